"""Every stack file previews (the kubernetes stacks without a cluster: pulumi-kubernetes plans every
object), and the kubernetes target's manifests hold up.

The prod stack renders its manifests (`k8s_render_dir`, for people who apply
them with kubectl) with the real pulumi-kubernetes provider, and the tests
check them against the Kubernetes OpenAPI schemas (vendored, strict), the
policy gate's rules, a real kube-apiserver (server-side dry run), and, for the
database's bootstrap SQL, a real PostgreSQL. tests/integration/test_prod_cluster.py
runs the same program on a real cluster.
"""

import copy
import secrets
import subprocess
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
import requests
from pulumi import automation as auto

from components.kubernetes import manifests as k8s
from components.servers.postgres import PG_BIN
from policies.rules import kubernetes_workloads as rules
from stacks import config as stack_settings
from stacks import docker_target
from stacks.config import validate
from tests.automation import local_servers_config, root_program, stack_file_config, temporary_stack
from tests.support.kube_apiserver import running_apiserver
from tests.support.kubernetes import load_manifests, schema_errors
from tests.support.postgres import running_postgres
from toolchain.env import ROOT
from toolchain.stack_file import file_values

STACKS = ("dev", "docker", "k8s", "staging", "prod")


def quiet(_line: str) -> None:
    """Keeps engine output out of the test log."""


def file_config(stack: str) -> dict:
    """A stack file's config as the program reads it (without the project prefix)."""
    return {k.removeprefix("dbcreds:"): v for k, v in file_values(stack).items()}


def test_environments_run_side_by_side_without_clashes():
    """Each stack's ports on this machine (every OpenBao node's; on the kubernetes target its
    port-forward's), and each stack's data folder, are its own, so any two run on one machine."""
    configs = {s: validate(file_config(s), s, ROOT) for s in STACKS}

    def ports_of(config) -> list[int]:
        target = config.target
        if target.kind == "kubernetes":
            return [target.vault_port]
        nodes = [p for node in target.vault_node_ports(config.vault.nodes) for p in node]
        return [*nodes, target.db_port, *([target.db_http_port] if target.kind == "local" else [])]

    ports = [p for c in configs.values() for p in ports_of(c)]
    assert len(ports) == len(set(ports))
    folders = [c.data_dir for c in configs.values()]
    assert len(set(folders)) == len(folders)
    # Stricter lifetimes further from dev.
    caps = [configs[s].database.max_ttl_cap for s in STACKS]
    assert caps == sorted(caps, reverse=True) and caps[0] > caps[-1]
    assert configs["prod"].vault.key_threshold > 1 and configs["prod"].target.kind == "kubernetes"


#: What a first preview of each stack file creates: the local stacks' whole chain with dev's two clients
#: and one service user (44), staging's with 3 OpenBao nodes (their servers, keepers and certificates,
#: the seal key and raft's autopilot: 56); on the kubernetes target, prod's 3 OpenBao pods, PostgreSQL,
#: the Vault layer and the in-cluster checks (58), and the k8s stack's one pod with Kubernetes auth
#: and the team app's client (69). Vault's PKI (dev, staging) also makes its intermediate the default issuer
#: (2), and every stack that runs OpenBao the resource that holds its nodes to one release (1: a
#: rollout on the local and kubernetes targets, the release check on docker). A change to the
#: program's graph changes these on purpose.
CREATES = {"dev": 63, "docker": 47, "k8s": 72, "staging": 61, "prod": 61}


@pytest.mark.parametrize("name", STACKS)
def test_every_stack_file_previews(name, tmp_path):
    """The stack's own config, through the real engine. Local stacks get free ports and a folder of
    their own here, so that a stack already up on this machine does not fail the preview."""
    with temporary_stack(root_program(tmp_path), tmp_path, name) as stack:
        stack.set_all_config(stack_file_config(name))
        target = file_config(name).get("target", "local")
        if target == "local":
            stack.set_all_config(local_servers_config(tmp_path / "data"))
        elif target == "docker":
            stack.set_all_config(local_servers_config(tmp_path / "data", ("vault_port", "vault_cluster_port",
                                                                          "db_port")))
        else:
            # No cluster: pulumi-kubernetes plans every object without one.
            stack.set_config("dbcreds:k8s_kubeconfig", auto.ConfigValue(str(tmp_path / "no-cluster")))
        # pulumi-docker's provider connects to the engine even for a preview.
        with docker_target.engine_running(stack_settings.of_stack(stack, ROOT)):
            preview = stack.preview(on_output=quiet)
        assert preview.change_summary == {"create": CREATES[name]}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    """The prod stack's manifests, rendered by `pulumi up`."""
    tmp_path = tmp_path_factory.mktemp("prod-render")
    folder = tmp_path / "manifests"
    with temporary_stack(root_program(tmp_path), tmp_path, "prod") as stack:
        stack.set_all_config(stack_file_config("prod"))
        stack.set_config("dbcreds:k8s_render_dir", auto.ConfigValue(str(folder)))
        outputs = stack.up(on_output=quiet).outputs
        assert outputs["target"].value == "kubernetes"
        assert outputs["db_host"].value == "db.dbcreds-prod.svc"
        assert outputs["vault_addr"].value == "https://vault.dbcreds-prod.svc:8200"
        yield folder


def by_kind(folder: Path) -> dict[str, dict[str, dict]]:
    found: dict[str, dict[str, dict]] = {}
    for manifest in load_manifests(folder):
        found.setdefault(manifest["kind"], {})[manifest["metadata"]["name"]] = manifest
    return found


def test_rendered_objects(rendered):
    objects = {kind: sorted(names) for kind, names in by_kind(rendered).items()}
    assert objects == {
        "Namespace": ["dbcreds-prod"],
        # Each named after its component (__main__.py's "vault" and "db").
        "Secret": ["db-passwords", "db-tls", "vault-seal", "vault-tls"],
        "ConfigMap": ["db-bootstrap", "vault-config"],
        "StatefulSet": ["db", "vault"],
        "Service": ["db", "db-internal", "vault", "vault-internal"],
        "PodDisruptionBudget": ["vault"],
        "NetworkPolicy": ["database-from-vault-and-clients", "default-deny-ingress", "vault-from-clients"],
    }


def test_rendered_manifests_match_the_kubernetes_schemas(rendered):
    errors = {f"{m['kind']}/{m['metadata']['name']}": schema_errors(m) for m in load_manifests(rendered)}
    assert {name: e for name, e in errors.items() if e} == {}


def test_the_schema_check_catches_mistakes(rendered):
    statefulset = by_kind(rendered)["StatefulSet"]["db"]
    typo = copy.deepcopy(statefulset)
    typo["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    assert any("securityContex" in e for e in schema_errors(typo))
    wrong_type = copy.deepcopy(statefulset)
    wrong_type["spec"]["replicas"] = "one"
    assert any("replicas" in e for e in schema_errors(wrong_type))


def test_rendered_manifests_pass_the_policy_gate(rendered):
    manifests = by_kind(rendered)
    resources = [SimpleNamespace(resource_type=rules.STATEFULSET, props=m) for m in manifests["StatefulSet"].values()]
    resources += [SimpleNamespace(resource_type=rules.NETWORK_POLICY, props=m)
                  for m in manifests["NetworkPolicy"].values()]
    problems: list[str] = []
    for statefulset in manifests["StatefulSet"].values():
        rules.workload_hardened(statefulset, {}, problems.append)
    rules.database_isolated(resources, {}, problems.append)
    assert problems == []


def test_tls_comes_from_secrets_not_images(rendered):
    manifests = by_kind(rendered)
    for name, secret in (("vault", "vault-tls"), ("db", "db-tls")):
        pod = manifests["StatefulSet"][name]["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["tls"]["secret"]["secretName"] == secret
        assert manifests["Secret"][secret]["type"] == "kubernetes.io/tls"
    # The ConfigMaps hold no secret: the admin's password is a psql variable from a Secret.
    bootstrap = manifests["ConfigMap"]["db-bootstrap"]["data"]["bootstrap.sql"]
    assert ":'admin_password'" in bootstrap and "PRIVATE KEY" not in str(manifests["ConfigMap"])


def test_rendered_bootstrap_sql_runs_on_a_real_postgres(rendered):
    """The image's initdb hook runs this as the superuser; here psql runs it the same way."""
    sql_text = by_kind(rendered)["ConfigMap"]["db-bootstrap"]["data"]["bootstrap.sql"]
    password = secrets.token_urlsafe(24)
    with running_postgres(bootstrapped=False) as db:
        script = db.server.data_dir.parent / "bootstrap.sql"
        script.write_text(sql_text)
        result = subprocess.run(
            [str(PG_BIN / "psql"), db.server.superuser_dsn(), "-v", "ON_ERROR_STOP=1", "-v",
             f"admin_password={password}", "-f", str(script)],
            capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        with db.connect("dbcreds_admin", password) as admin:
            assert admin.execute("SELECT count(*) FROM public.users").fetchone()[0] == 3
        with db.as_superuser("app") as conn:
            groups = {r[0] for r in conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname LIKE 'dbcreds\\_group\\_%'").fetchall()}
            reader = set(conn.execute(
                "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
                "WHERE grantee = 'dbcreds_group_reader'").fetchall())
        assert groups == {"dbcreds_group_reader", "dbcreds_group_app"}
        assert reader == {("users", "SELECT"), ("orders", "SELECT")}
        with pytest.raises(psycopg.OperationalError):
            db.connect("dbcreds_admin", "not the password")


def test_statefulsets_are_hardened(rendered):
    for statefulset in by_kind(rendered)["StatefulSet"].values():
        pod = statefulset["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        for container in pod["containers"]:
            assert container["securityContext"] == k8s.container_security()
            assert set(container["resources"]) == {"requests", "limits"}
        assert statefulset["spec"]["volumeClaimTemplates"]


# A real kube-apiserver (and etcd), built from their Go modules by make bootstrap.

API_PATHS = {
    "Secret": "/api/v1/namespaces/{ns}/secrets", "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "Service": "/api/v1/namespaces/{ns}/services", "StatefulSet": "/apis/apps/v1/namespaces/{ns}/statefulsets",
    "PodDisruptionBudget": "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
    "NetworkPolicy": "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
}


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory):
    with running_apiserver(tmp_path_factory.mktemp("kube-apiserver")) as server:
        yield server


def dry_run(server, manifest) -> requests.Response:
    path = API_PATHS[manifest["kind"]].format(ns=manifest["metadata"]["namespace"])
    return server.request("POST", path + "?dryRun=All&fieldValidation=Strict", json=manifest)


def test_rendered_manifests_pass_a_server_side_dry_run(rendered, apiserver):
    manifests = load_manifests(rendered)
    (namespace,) = [m for m in manifests if m["kind"] == "Namespace"]
    # Namespaced objects are dry-run into an existing namespace, deleted again whatever the test found.
    assert apiserver.request("POST", "/api/v1/namespaces?fieldValidation=Strict", json=namespace).status_code == 201
    try:
        answers = {f"{m['kind']}/{m['metadata']['name']}": dry_run(apiserver, m) for m in manifests
                   if m["kind"] != "Namespace"}
        assert {name: r.json().get("message") for name, r in answers.items() if r.status_code != 201} == {}
        assert len(answers) == 16
        # And the server refuses what the schema check refuses.
        typo = copy.deepcopy(by_kind(rendered)["StatefulSet"]["db"])
        typo["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
        refused = dry_run(apiserver, typo)
        assert refused.status_code == 400 and "unknown field" in refused.json()["message"]
    finally:
        deleted = apiserver.request("DELETE", f"/api/v1/namespaces/{namespace['metadata']['name']}")
    assert deleted.ok, deleted.text


def test_prod_without_a_cluster_fails_before_anything_is_made_saying_how_to_start_one(tmp_path):
    """`up` (make up STACK=prod) with no API server behind the kubeconfig: the program stops at once,
    naming the kubeconfig and `make cluster-up`; nothing is made."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster:\n"
                          "    server: https://127.0.0.1:9\ncontexts:\n- name: gone\n  context: {cluster: gone, "
                          "user: gone}\ncurrent-context: gone\nusers:\n- name: gone\n  user: {token: x}\n")
    with temporary_stack(root_program(tmp_path), tmp_path, "prod") as stack:
        stack.set_all_config({**stack_file_config("prod"), "dbcreds:k8s_kubeconfig": auto.ConfigValue(str(kubeconfig))})
        with pytest.raises(auto.CommandError) as failed:
            stack.up(on_output=quiet)
        made = stack.export_stack().deployment.get("resources") or []
        assert [r["type"] for r in made if r["type"] != "pulumi:pulumi:Stack"] == []
    message = str(failed.value)
    assert f"config k8s_kubeconfig: no Kubernetes API server answers through {kubeconfig}" in message
    assert "make cluster-up" in message
