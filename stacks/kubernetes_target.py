"""What a stack on the kubernetes target has in its cluster, found from its validated config: whether
the cluster answers, the database's dynamic users (read as the superuser, inside the PostgreSQL pod
over its socket, through `kubectl exec`), and what of the stack is left after it was destroyed; and
the way this machine reaches its Vault (a port-forward to its Service).

`make down` proves with these that nothing is left; the tests do the same.
"""

import json
import subprocess

from components.kubernetes.manifests import DB_PORT, VAULT_PORT
from components.kubernetes.port_forward import PortForward
from components.servers.postgres_image import RUN
from components.postgres_sql import DYNAMIC_USERS_QUERY, drop_dynamic_user_statements
from stacks.config import StackConfig
from toolchain.env import ROOT

KUBECTL = ROOT / ".tools" / "bin" / "kubectl"
#: The longest one kubectl call here may take (an exec of psql in the database pod included).
KUBECTL_SECONDS = 300


class KubernetesTargetError(RuntimeError):
    pass


def kubectl(config: StackConfig, *args: str, stdin: str | None = None, check: bool = True,
            timeout: float = KUBECTL_SECONDS) -> subprocess.CompletedProcess:
    """kubectl on the stack's cluster (its kubeconfig, else the ambient one). kubectl itself waits
    forever on an API server that takes the connection and never answers: bounded here."""
    if not KUBECTL.exists():
        raise KubernetesTargetError(f"no kubectl at {KUBECTL}: make bootstrap-stack STACK=<a kubernetes stack>")
    kubeconfig = ["--kubeconfig", config.target.kubeconfig] if config.target.kubeconfig else []
    try:
        result = subprocess.run([str(KUBECTL), *kubeconfig, *args], input=stdin, capture_output=True, text=True,
                                timeout=timeout)
    except subprocess.TimeoutExpired:
        raise KubernetesTargetError(f"kubectl {' '.join(args)} did not finish within {timeout:.0f} s") from None
    if check and result.returncode != 0:
        raise KubernetesTargetError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def images(config: StackConfig) -> dict[str, tuple[str, bool]]:
    """The image the pods of each role run (openbao, postgres, python), and whether it is the one built
    here (its setting left empty: imported into the nodes, never pulled)."""
    from components.docker.images import image_names

    built = image_names()
    return {role: (image or built[role], image is None) for role, image in config.target.images.items()}


def cluster_problem(config: StackConfig) -> str:
    """Why the stack's cluster cannot be used (empty when its API server answers)."""
    where = config.target.kubeconfig or "the ambient kubeconfig (KUBECONFIG, ~/.kube/config)"
    if not KUBECTL.exists():
        return f"no kubectl at {KUBECTL}: make bootstrap-stack STACK=<a kubernetes stack> builds it"
    try:
        result = kubectl(config, "get", "--raw", "/readyz", "--request-timeout=10s", check=False)
    except KubernetesTargetError as error:
        return str(error)
    if result.returncode != 0:
        return (f"no Kubernetes API server answers through {where} ({result.stderr.strip()[:300]}): start the "
                "project's cluster with `make cluster-up` (or point k8s_kubeconfig at your cluster's kubeconfig)")
    return ""


def vault_forward(config: StackConfig) -> PortForward:
    """This machine's way to the stack's Vault: a port-forward to its Service on 127.0.0.1:vault_port."""
    return PortForward(config.target.kubeconfig, config.target.namespace, "vault", config.target.vault_port,
                       VAULT_PORT)


def superuser_sql(config: StackConfig, pod: str, script: str) -> str:
    """Runs SQL as the superuser (psql over the socket in the PostgreSQL pod, which runs as the
    postgres account) on the application database; its output, one row per line. The script goes in
    on stdin, never on a command line."""
    return kubectl(config, "--namespace", config.target.namespace, "exec", "--stdin", pod,
                   "--container", "postgres", "--", "psql", "--host", RUN, "--port", str(DB_PORT),
                   "--dbname", config.database.name, "--no-psqlrc", "--quiet", "--tuples-only", "--no-align",
                   "-v", "ON_ERROR_STOP=1", "--file", "-", stdin=script).stdout


def dynamic_users(config: StackConfig, pod: str, query: str = DYNAMIC_USERS_QUERY) -> list[str]:
    """The database users Vault's dynamic roles made that still exist (or those a narrower query of
    them lists; `pod`: the stack's db_pod output)."""
    return sorted(superuser_sql(config, pod, query + ";").split())


def drop_dynamic_users(config: StackConfig, pod: str, users: list[str]) -> None:
    """Drops dynamic users as the superuser (their sessions ended first), as Vault's revocation would."""
    superuser_sql(config, pod, ";\n".join(drop_dynamic_user_statements(users)) + ";")


def ours_left(config: StackConfig) -> list[str]:
    """What of the stack is still in the cluster (nothing, once it was destroyed): its namespace, and the
    volumes its claims had (the provisioner deletes them, and their data on the nodes, once the
    claims are gone)."""
    left = []
    if kubectl(config, "get", "namespace", config.target.namespace, check=False).returncode == 0:
        left.append(f"namespace {config.target.namespace}")
    volumes = json.loads(kubectl(config, "get", "persistentvolumes", "--output", "json").stdout)["items"]
    left += [f"PersistentVolume {v['metadata']['name']} (of claim {v['spec']['claimRef']['name']})" for v in volumes
             if (v["spec"].get("claimRef") or {}).get("namespace") == config.target.namespace]
    return left
