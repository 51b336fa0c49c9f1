"""The root program (`__main__.py`) with the dev stack file's config, under Pulumi's mocks: what it
composes, quickly. tests/integration/test_dev_stack.py runs the same program for real."""

import json
import runpy
from collections import Counter

from types import SimpleNamespace

import pulumi
import pytest
from pulumi_policy import ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy

from components.postgres_sql import creation_statements
from components.vault_policies import client_policy
from policies.rules import common as rules
from policies.pack import POLICIES
from tests.unit.graph import registered, unwrap
from tests.unit.policy import BY_NAME, violations
from toolchain.env import ROOT
from toolchain.stack_file import stored_config

CHECKS = "pulumi-python:dynamic/dbcreds:PostDeployChecks"

def run_dev_program(monkeypatch, stack: str = "dev", **overrides: str) -> None:
    monkeypatch.chdir(ROOT)
    pulumi.runtime.set_all_config({**stored_config(stack), **{f"dbcreds:{k}": v for k, v in overrides.items()}})

    @pulumi.runtime.test
    def program():
        runpy.run_path(str(ROOT / "__main__.py"))

    program()


def test_the_dev_stack_composes_servers_engine_clients_and_checks(monitor, monkeypatch):
    run_dev_program(monkeypatch)
    types = Counter(u.split("::")[2].rsplit("$", 1)[-1] for u in monitor.get_registered_resources())
    assert {t: n for t, n in types.items() if t.startswith("vault:")} == {
        "vault:index/mount:Mount": 3,
        "vault:pkiSecret/secretBackendIntermediateCertRequest:SecretBackendIntermediateCertRequest": 1,
        "vault:pkiSecret/secretBackendIntermediateSetSigned:SecretBackendIntermediateSetSigned": 1,
        "vault:pkiSecret/secretBackendRole:SecretBackendRole": 1,
        "vault:pkiSecret/secretBackendCert:SecretBackendCert": 1,
        "vault:database/secretBackendConnection:SecretBackendConnection": 2,
        # Each engine's rotate-root endpoint, and the import naming Vault's PKI intermediate's issuer.
        "vault:generic/endpoint:Endpoint": 3,
        "vault:pkiSecret/secretBackendConfigIssuers:SecretBackendConfigIssuers": 1,
        "vault:database/secretBackendRole:SecretBackendRole": 2,
        "vault:database/secretBackendStaticRole:SecretBackendStaticRole": 1,
        "vault:index/authBackend:AuthBackend": 1,
        "vault:index/policy:Policy": 4,
        "vault:appRole/authBackendRole:AuthBackendRole": 3,
        "vault:appRole/authBackendRoleSecretId:AuthBackendRoleSecretId": 3,
    }
    roles = registered(monitor, "vault:database/secretBackendRole:SecretBackendRole")
    # dev's app role caps each of its users at 5 sessions.
    assert roles["engine-role-app"]["creationStatements"] == creation_statements("dbcreds_group_app", 5)
    assert (roles["engine-role-app"]["defaultTtl"], roles["engine-role-app"]["maxTtl"]) == (3600, 8 * 3600)
    policies = registered(monitor, "vault:index/policy:Policy")
    assert policies["reader-policy"]["policy"] == client_policy("database", "reader")
    mounts = registered(monitor, "vault:index/mount:Mount")
    assert mounts["engine-mount"]["maxLeaseTtlSeconds"] == 86400 and mounts["db-pki-mount"]["type"] == "pki"
    # dev's database certificate comes from Vault's PKI: an intermediate the bootstrap CA signs.
    intermediate = registered(monitor, "tls:index/locallySignedCert:LocallySignedCert")["db-pki-intermediate"]
    assert intermediate["isCaCertificate"] is True
    assert intermediate["certRequestPem"] == "csr of db-pki-intermediate-request"
    (server_cert,) = registered(monitor, "vault:pkiSecret/secretBackendCert:SecretBackendCert").values()
    assert (server_cert["commonName"], server_cert["ipSans"], server_cert["autoRenew"]) == (
        "localhost", ["127.0.0.1"], True)
    postgres = registered(monitor, "pulumi-python:dynamic:Resource")["db-postgres"]
    assert unwrap(postgres["cert_pem"]) == "certificate of db-pki-server\nissuingCa of db-pki-server"
    assert "bootstrap-database" not in registered(monitor, "tls:index/locallySignedCert:LocallySignedCert")
    secret_ids = registered(monitor, "vault:appRole/authBackendRoleSecretId:AuthBackendRoleSecretId")
    assert {name: s["ttl"] for name, s in secret_ids.items()} == {
        "reader-secret-id": 86400, "app-secret-id": 86400, "team-reports-secret-id": 86400}
    # The secret_ids renewed at half their lifetime; root rotated at dev's root_rotation_period (7d).
    rotations = registered(monitor, "pulumi-python:dynamic/dbcreds:Rotation")
    assert {name: (r["rotate_after"], r["rotates"]) for name, r in rotations.items()} == {
        "reader-secret-id-rotation": (43200, ""), "app-secret-id-rotation": (43200, ""),
        "engine-root-rotation": (7 * 86400, "database/rotate-root/app"),
        "team-reports-secret-id-rotation": (43200, ""),
        "team-reports-root-rotation": (7 * 86400, "team-reports-db/rotate-root/app")}

    checks = registered(monitor, CHECKS)["checks"]
    assert checks["root_rotated_at"] == "created_at of engine-root-rotation"
    clients = unwrap(checks["clients"])
    assert [c["name"] for c in clients] == ["reader", "app"]
    assert clients[1]["creds_path"] == "database/creds/app" and clients[1]["max_ttl"] == 8 * 3600
    assert "CREATE ROLE probe" in clients[1]["forbidden"]
    assert checks["static_creds_paths"] == ["database/static-creds/svc_reporting"]
    assert checks["database_pki_mount"] == "pki-db"
    assert "database/config/app" in checks["protected_paths"]
    # The plan's secrets (secret_ids, passwords, the Vault token) rest as secrets in the state.
    from components.vault.post_deploy_checks import CheckPlanArgs

    for name in CheckPlanArgs.SECRET_FIELDS:
        assert checks[name]["4dabf18193072939515e22adb298388d"] == pulumi.runtime.rpc._special_secret_sig, name
    # Each server has its keeper; the Vault server trusts the database's CA.
    dynamic = registered(monitor, "pulumi-python:dynamic:Resource")
    assert {dynamic["vault-running"]["kind"], dynamic["db-running"]["kind"]} == {"openbao", "postgres"}
    openbao = registered(monitor, "pulumi-python:dynamic/dbcreds:OpenBaoServer")["vault-openbao"]
    assert openbao["database_ca_pem"] == "certPem of bootstrap-ca"


def plain(value):
    """A registered value as the policy engine gives it: secrets unwrapped."""
    if isinstance(value, dict):
        if pulumi.runtime.rpc._special_sig_key in value:
            return plain(value["value"])
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def test_the_gate_passes_exactly_what_our_components_register(monitor, monkeypatch):
    """Each rule judges the properties the root program registers: rules and components cannot drift."""
    run_dev_program(monkeypatch)
    judged = set()
    resources = []
    for urn, registration in monitor.get_registered_resources().items():
        resource_type, props = urn.split("::")[2].rsplit("$", 1)[-1], plain(registration.state)
        resources.append(SimpleNamespace(resource_type=resource_type, name=urn.rsplit("::", 1)[1], props=props))
        for policy in POLICIES:
            if isinstance(policy, ResourceValidationPolicy):
                found = violations(policy.name, resource_type, props, {"maxTtlCapSeconds": 86400})
                assert found == [], (urn, found)
        judged.add(resource_type)
    assert {rules.CONNECTION, rules.ROLE, rules.STATIC_ROLE, rules.POLICY, rules.APPROLE_ROLE, rules.ENDPOINT,
            rules.OPENBAO_SERVER} <= judged
    for policy in POLICIES:
        if isinstance(policy, StackValidationPolicy):
            found: list[str] = []
            policy.validate(StackValidationArgs(resources, {}), lambda m, urn=None: found.append(m))
            assert found == [], (policy.name, found)
    # Production's rule too: root rotated on a schedule within the cap (its Rotation names the endpoint).
    found = []
    BY_NAME["root-credentials-rotated"].validate(StackValidationArgs(resources, {
        "requireRotationSchedule": True, "maxRootRotationSeconds": 7 * 86400}), lambda m, urn=None: found.append(m))
    assert found == []


def test_cockroach_certificates_come_from_vaults_pki(monitor, monkeypatch):
    """db_engine cockroachdb with vault_pki (the local default): Vault first, its PKI issues `node` (server
    and client auth, a SAN per address) and `client.root` (client auth only); the node's certs directory
    holds them and the chain; no CA of the cluster's own. Live only where a `cockroach` binary is."""
    from stacks import preflight

    # The graph only: no cockroach process is started under the mocks, so no binary is needed.
    monkeypatch.setattr(preflight, "check_machine", lambda _config: None)
    # CockroachDB has no static roles and no per-user session cap: dev's are left out.
    roles = json.loads(stored_config("dev")["dbcreds:roles"])
    for spec in roles.values():
        spec.pop("connection_limit", None)
    run_dev_program(monkeypatch, db_engine="cockroachdb", service_users="{}", transit_store_key="true", teams="{}",
                    roles=json.dumps(roles))
    resources = monitor.get_registered_resources()
    roles = registered(monitor, "vault:pkiSecret/secretBackendRole:SecretBackendRole")
    assert (roles["db-pki-role"]["serverFlag"], roles["db-pki-role"]["clientFlag"]) == (True, True)
    assert roles["db-pki-role"]["allowedDomains"] == ["localhost", "node"]
    client = roles["db-pki-client-role"]
    assert (client["serverFlag"], client["clientFlag"], client["allowedDomains"]) == (False, True, ["root"])
    certs = registered(monitor, "vault:pkiSecret/secretBackendCert:SecretBackendCert")
    assert (certs["db-pki-server"]["commonName"], certs["db-pki-server"]["altNames"],
            certs["db-pki-server"]["ipSans"]) == ("node", ["localhost"], ["127.0.0.1"])
    assert certs["db-pki-client-root"]["commonName"] == "root"
    assert all(c["autoRenew"] and c["revoke"] for c in certs.values())
    # No CA of the cluster's own: pulumi-tls makes only the bootstrap PKI.
    assert not [u for u in resources if "db-certs" in u]
    dynamic = registered(monitor, "pulumi-python:dynamic:Resource")
    files = unwrap(dynamic["db-node"]["files"])
    assert sorted(files) == ["ca.crt", "client.root.crt", "client.root.key", "node.crt", "node.key"]
    assert files["ca.crt"] == "certPem of db-pki-intermediate\ncertPem of bootstrap-ca"
    assert files["node.crt"] == "certificate of db-pki-server\nissuingCa of db-pki-server"
    assert files["client.root.key"] == "privateKey of db-pki-client-root"
    # Vault's connection verifies the node against the bootstrap CA; the checks, against Vault's chain.
    (vault,) = registered(monitor, "pulumi-python:dynamic/dbcreds:OpenBaoServer").values()
    assert vault["database_ca_pem"] == "certPem of bootstrap-ca"
    assert registered(monitor, CHECKS)["checks"]["database_pki_mount"] == "pki-db"
    assert set(registered(monitor, "vault:transit/secretBackendKey:SecretBackendKey")) == {"store-key-key"}


def test_the_docker_stack_runs_the_same_vault_layer_on_hardened_containers(monitor, monkeypatch):
    """The docker stack: OpenBao and PostgreSQL containers from images built from the repository's
    Dockerfiles, on the host's network with no capability beyond what each needs; the same engine,
    clients and checks as dev; the gate passes it. tests/integration/test_docker_stack.py runs it."""
    from components.docker import images
    from stacks import preflight

    # The graph only: no engine is started and no image built under the mocks.
    monkeypatch.setattr(preflight, "check_machine", lambda _config: None)
    run_dev_program(monkeypatch, stack="docker")
    types = Counter(u.split("::")[2].rsplit("$", 1)[-1] for u in monitor.get_registered_resources())
    assert {t: n for t, n in types.items() if t.startswith("docker:")} == {
        "docker:index/image:Image": 2, "docker:index/volume:Volume": 3,
        "docker:index/container:Container": 2}
    assert types["pulumi:providers:docker"] == 1
    assert not [t for t in types if t.startswith("vault:pkiSecret")]
    built = registered(monitor, "docker:index/image:Image")
    assert {name: (i["build"]["dockerfile"], i["build"]["context"]) for name, i in built.items()} == {
        "vault-image": (str(ROOT / "docker" / "openbao.Dockerfile"), str(images.openbao_context())),
        "db-image": (str(ROOT / "docker" / "postgres.Dockerfile"), str(images.postgres_context()))}
    assert all(i["skipPush"] is True and i["buildOnPreview"] is False for i in built.values())
    containers = registered(monitor, "docker:index/container:Container")
    for container in containers.values():
        assert (container["networkMode"], container["restart"], container["privileged"]) == (
            "host", "unless-stopped", False)
        assert container["securityOpts"] == ["no-new-privileges"] and container["capabilities"]["drops"] == ["ALL"]
        assert container["image"] == f"repoDigest of {container['name'].split('-')[-2]}-image"
    assert containers["vault-container"]["capabilities"]["adds"] == []
    assert containers["db-container"]["capabilities"]["adds"] == ["CAP_CHOWN", "CAP_FOWNER", "CAP_SETGID",
                                                                   "CAP_SETUID"]
    assert containers["db-container"]["name"] == "dbcreds-unit-db-postgres"
    uploads = {u["file"]: u for c in containers.values() for u in plain(c["uploads"])}
    assert {f for f, u in uploads.items() if u.get("permissions") == "0400"} == {
        "/openbao/tls/server.key", "/bootstrap/tls/server.key", "/bootstrap/admin-password"}
    assert 'address         = "127.0.0.1:18400"' in uploads["/openbao/config.hcl"]["content"]
    assert "port = 15632" in uploads["/bootstrap/postgresql.conf"]["content"]
    assert 'CREATE ROLE "svc_reporting"' in uploads["/bootstrap/bootstrap.sql"]["content"]
    # The Vault layer is dev's: Vault verifies the database against the CA file in its container.
    connection, = registered(monitor, "vault:database/secretBackendConnection:SecretBackendConnection").values()
    url = plain(connection["postgresql"])["connectionUrl"]
    assert url == ("postgresql://{{username}}:{{password}}@127.0.0.1:15632/app"
                   "?sslmode=verify-full&sslrootcert=/openbao/tls/database-ca.crt")
    assert len(registered(monitor, "vault:database/secretBackendRole:SecretBackendRole")) == 2
    assert [c["name"] for c in unwrap(registered(monitor, CHECKS)["checks"]["clients"])] == ["reader", "app"]
    # Each container has its keeper (make up runs them first when a server is down).
    assert set(registered(monitor, "pulumi-python:dynamic/dbcreds:VaultUnsealed")) == {"vault-running"}
    db_keeper = registered(monitor, "pulumi-python:dynamic/dbcreds:ContainerRunning")["db-running"]
    assert db_keeper["host"] == f"unix://{ROOT}/.data/docker/docker/docker.sock"
    for urn, registration in monitor.get_registered_resources().items():
        resource_type = urn.split("::")[2].rsplit("$", 1)[-1]
        for policy in POLICIES:
            if isinstance(policy, ResourceValidationPolicy):
                assert violations(policy.name, resource_type, plain(registration.state),
                                  {"maxTtlCapSeconds": 86400}) == [], urn


def test_prod_runs_the_vault_layer_on_three_spread_openbao_pods_with_checks_in_the_cluster(monitor, monkeypatch):
    """The prod stack (kubernetes target): OpenBao as 3 raft pods of the image built here, spread over
    nodes, joined over the headless Service, unsealed by the static seal, initialised through this
    machine's port-forward with no root token kept; PostgreSQL from the image built here; dev's kind
    of engine, clients and static role; the checks as a Job in the cluster; the gate passes it.
    tests/integration/test_prod_cluster.py runs it on a real cluster."""
    from components.docker import images
    from components.kubernetes.port_forward import PortForward
    from stacks import preflight

    # No cluster here: nothing is reached (the forward is not started).
    monkeypatch.setattr(preflight, "check_machine", lambda _config: None)
    monkeypatch.setattr(PortForward, "start", lambda self: self)
    run_dev_program(monkeypatch, stack="prod")
    types = Counter(u.split("::")[2].rsplit("$", 1)[-1] for u in monitor.get_registered_resources())
    assert {t: n for t, n in types.items() if t.startswith("kubernetes:")} == {
        "kubernetes:core/v1:Namespace": 1, "kubernetes:core/v1:Secret": 4, "kubernetes:core/v1:ConfigMap": 3,
        "kubernetes:apps/v1:StatefulSet": 2, "kubernetes:core/v1:Service": 4,
        "kubernetes:policy/v1:PodDisruptionBudget": 1, "kubernetes:networking.k8s.io/v1:NetworkPolicy": 3}
    statefulsets = registered(monitor, "kubernetes:apps/v1:StatefulSet")
    vault_set = statefulsets["vault-statefulset"]["spec"]
    assert vault_set["replicas"] == 3 and vault_set["podManagementPolicy"] == "Parallel"
    assert vault_set["template"]["spec"]["affinity"]["podAntiAffinity"]
    for statefulset in statefulsets.values():
        pod = statefulset["spec"]["template"]["spec"]
        assert "hostNetwork" not in pod and pod["automountServiceAccountToken"] is False
        assert pod["containers"][0]["imagePullPolicy"] == "Never"
    assert {n: s["spec"]["template"]["spec"]["containers"][0]["image"] for n, s in statefulsets.items()} == {
        "vault-statefulset": images.image_names()["openbao"], "db-statefulset": images.image_names()["postgres"]}
    config_maps = registered(monitor, "kubernetes:core/v1:ConfigMap")
    hcl = config_maps["vault-config"]["data"]["config.hcl"]
    assert 'seal "static"' in hcl and hcl.count("retry_join") == 3
    assert 'leader_api_addr     = "https://vault-2.vault-internal.dbcreds-prod.svc:8200"' in hcl
    assert 'CREATE ROLE "svc_reporting"' in config_maps["db-bootstrap"]["data"]["bootstrap.sql"]
    assert "checks-code" in config_maps
    connection, = registered(monitor, "vault:database/secretBackendConnection:SecretBackendConnection").values()
    assert plain(connection["postgresql"])["connectionUrl"] == (
        "postgresql://{{username}}:{{password}}@db.dbcreds-prod.svc:5432/app"
        "?sslmode=verify-full&sslrootcert=/openbao/tls/database-ca.crt")
    init, = registered(monitor, "pulumi-python:dynamic/dbcreds:OpenBaoInit").values()
    assert (init["address"], init["seal"], init["keep_root_token"]) == ("https://127.0.0.1:18800", "static", False)
    checks, = registered(monitor, "pulumi-python:dynamic/dbcreds:InClusterChecks").values()
    plan = unwrap(checks["plan"])
    assert [c["name"] for c in plan["clients"]] == ["reader", "app"] and plan["target"]["db_host"] == "db.dbcreds-prod.svc"
    assert len(plan["node_addresses"]) == 3 and plan["raft_voters"] == 3
    # The same plan as the local checks', whole a secret; no Vault token in it (each run mints one).
    assert checks["plan"]["4dabf18193072939515e22adb298388d"] == pulumi.runtime.rpc._special_secret_sig
    assert plan["vault_token"] == "" and plan["database_pki_mount"] == ""
    # The Job's checks report the root credential's age too: from when its Rotation was made.
    assert plan["root_rotated_at"] == "created_at of engine-root-rotation"
    assert "vault:index/raftAutopilot:RaftAutopilot" in types
    # Resource policies, then the stack policies as prod's gate config sets them.
    gate = {"maxTtlCapSeconds": 4 * 3600}
    resources = []
    for urn, registration in monitor.get_registered_resources().items():
        resource_type = urn.split("::")[2].rsplit("$", 1)[-1]
        resources.append(SimpleNamespace(resource_type=resource_type, name=urn.rsplit("::", 1)[1],
                                         props=plain(registration.state)))
        for policy in POLICIES:
            if isinstance(policy, ResourceValidationPolicy):
                assert violations(policy.name, resource_type, plain(registration.state), gate) == [], urn
    production = {"minNodes": 3, "requireAutoUnseal": True, "requireNoRootToken": True, "requireSpread": True,
                  "requireRotationSchedule": True, "maxRootRotationSeconds": 7 * 86400}
    for policy in POLICIES:
        if isinstance(policy, StackValidationPolicy) and policy.name in (
                "vault-highly-available", "vault-no-root-token", "kubernetes-vault-spread",
                "root-credentials-rotated"):
            found: list[str] = []
            policy.validate(StackValidationArgs(resources, production), lambda m, urn=None: found.append(m))
            assert found == [], policy.name


def test_the_k8s_stack_lets_the_team_apps_pods_log_in_with_their_service_account(monitor, monkeypatch):
    """The k8s stack (kubernetes target) with its team-app client: OpenBao's pods get a service account
    bound to system:auth-delegator and its token, projected (never automounted) at the standard path;
    the kubernetes auth method reviews tokens with it; one role for team-app, bound to its service
    account and namespace, an audience, its policy only and a token that outlives the role's max_ttl;
    the network policies take the team's namespace in; the gate passes it.
    tests/integration/test_team_app.py runs it on a real cluster."""
    from components.kubernetes import manifests
    from components.kubernetes.port_forward import PortForward
    from stacks import preflight

    monkeypatch.setattr(preflight, "check_machine", lambda _config: None)
    monkeypatch.setattr(PortForward, "start", lambda self: self)
    run_dev_program(monkeypatch, stack="k8s")
    account, = registered(monitor, "kubernetes:core/v1:ServiceAccount").values()
    assert (account["metadata"]["name"], account["metadata"]["namespace"]) == ("vault", "dbcreds-k8s")
    binding, = registered(monitor, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding").values()
    assert binding["roleRef"]["name"] == "system:auth-delegator"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "vault", "namespace": "dbcreds-k8s"}]
    pod = registered(monitor, "kubernetes:apps/v1:StatefulSet")["vault-statefulset"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "vault" and pod["automountServiceAccountToken"] is False
    assert {"name": "api-token", "mountPath": manifests.API_TOKEN_DIR, "readOnly": True} in (
        pod["containers"][0]["volumeMounts"])
    backends = registered(monitor, "vault:index/authBackend:AuthBackend")
    assert {b["type"]: b["path"] for b in backends.values()} == {"approle": "approle", "kubernetes": "kubernetes"}
    config, = registered(monitor, "vault:kubernetes/authBackendConfig:AuthBackendConfig").values()
    assert config["kubernetesHost"] == "https://kubernetes.default.svc" and config["disableLocalCaJwt"] is False
    assert "tokenReviewerJwt" not in config and "kubernetesCaCert" not in config
    role, = registered(monitor, "vault:kubernetes/authBackendRole:AuthBackendRole").values()
    assert (role["roleName"], role["boundServiceAccountNames"], role["boundServiceAccountNamespaces"]) == (
        "team-app", ["team-app"], ["team-app"])
    assert (role["audience"], role["tokenPolicies"], role["tokenNoDefaultPolicy"]) == (
        "vault.dbcreds-k8s.svc", ["client-team-app"], True)
    assert (role["tokenTtl"], role["tokenMaxTtl"]) == (900, 7200)
    # AppRole stays for every client (the checks log in with it).
    assert set(registered(monitor, "vault:appRole/authBackendRole:AuthBackendRole")) == {
        "reader-approle", "app-approle", "team-app-approle"}
    init, = registered(monitor, "pulumi-python:dynamic/dbcreds:OpenBaoInit").values()
    assert 'path "auth/kubernetes/*"' in init["admin_policy"]
    policies = registered(monitor, "kubernetes:networking.k8s.io/v1:NetworkPolicy")
    vault_in = policies["k8s-vault-from-clients"]["spec"]["ingress"][0]["from"]
    assert {"podSelector": {"matchLabels": manifests.VAULT_CLIENT_LABEL},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team-app"}}} in vault_in
    for urn, registration in monitor.get_registered_resources().items():
        resource_type = urn.split("::")[2].rsplit("$", 1)[-1]
        for policy in POLICIES:
            if isinstance(policy, ResourceValidationPolicy):
                assert violations(policy.name, resource_type, plain(registration.state),
                                  {"maxTtlCapSeconds": 86400}) == [], urn


#: The settings of the dev stack file an external stack shares (its servers' are the external target's).
SHARED = ("roles", "service_users", "clients", "max_ttl_cap", "db_name", "db_admin")


@pytest.fixture
def external_monitor():
    """The mock monitor, the external Vault's audit devices read as one file device."""
    from tests.unit.conftest import Mocks

    class ExternalMocks(Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs):
            name, outs = super().new_resource(args)
            return name, {**outs, "devices": ["file/ (file)"]} if args.name.endswith("-audit") else outs

    pulumi.runtime.set_mocks(ExternalMocks(), project="dbcreds", stack="unit", preview=False)
    return pulumi.runtime.settings.get_monitor()


def run_external_program(monkeypatch, tmp_path, prefix: str = "", namespace: str = "") -> None:
    """The root program on the external target under the mocks, its Vault names prefixed (vault_prefix)
    or in a namespace (vault_namespace) when given."""
    for name in ("vault-ca.crt", "db-ca.crt"):
        (tmp_path / name).write_text("CA PEM")
    dev = stored_config("dev")
    config = {
        **{f"dbcreds:{k}": dev[f"dbcreds:{k}"] for k in SHARED if f"dbcreds:{k}" in dev},
        "dbcreds:data_dir": str(tmp_path / "data"), "dbcreds:target": "external",
        "dbcreds:vault_addr": "https://vault.internal:8200", "dbcreds:vault_ca_file": str(tmp_path / "vault-ca.crt"),
        "dbcreds:vault_database_ca_file": "/etc/openbao/db-ca.crt", "dbcreds:vault_token": "s.operator",
        "dbcreds:db_host": "db.internal", "dbcreds:db_port": "5432", "dbcreds:db_ca_file": str(tmp_path / "db-ca.crt"),
        "dbcreds:db_stack_admin": "rds_master", "dbcreds:db_stack_admin_password": "master-password",
        "dbcreds:vault_prefix": prefix,
        **({"dbcreds:vault_namespace": namespace} if namespace else {}),
    }
    monkeypatch.chdir(ROOT)
    pulumi.runtime.set_all_config(config, ["dbcreds:vault_token", "dbcreds:db_stack_admin_password"])

    @pulumi.runtime.test
    def program():
        runpy.run_path(str(ROOT / "__main__.py"))

    program()


def vault_names(monitor) -> dict[str, str]:
    """What the stack names in Vault, by resource: each mount's and auth method's path, each policy's
    name, and the mount (backend) of everything made in one (roles, the connection, AppRole logins); the
    root rotation's endpoint path."""
    names = {}
    for urn, registration in monitor.get_registered_resources().items():
        resource_type, name = urn.split("::")[2].rsplit("$", 1)[-1], urn.rsplit("::", 1)[1]
        if not resource_type.startswith("vault:") or resource_type == "pulumi:providers:vault":
            continue
        state = registration.state
        key = "name" if resource_type == rules.POLICY else "backend" if "backend" in state else "path"
        names[f"{name}.{key}"] = state[key]
    return names


def test_an_external_stack_with_a_vault_prefix_starts_every_name_it_makes_in_vault_with_it(
        external_monitor, monkeypatch, tmp_path):
    monitor = external_monitor
    run_external_program(monkeypatch, tmp_path, "team-a")
    names = vault_names(monitor)
    assert names == {
        "engine-mount.path": "team-a-database", "engine-connection.backend": "team-a-database",
        "engine-role-app.backend": "team-a-database", "engine-role-reader.backend": "team-a-database",
        "engine-static-role-svc_reporting.backend": "team-a-database",
        "engine-rotate-root.path": "team-a-database/rotate-root/app",
        "approle.path": "team-a-approle",
        "app-approle.backend": "team-a-approle", "app-secret-id.backend": "team-a-approle",
        "reader-approle.backend": "team-a-approle", "reader-secret-id.backend": "team-a-approle",
        "app-policy.name": "team-a-client-app", "reader-policy.name": "team-a-client-reader",
    }, names
    policies = registered(monitor, rules.POLICY)
    assert policies["app-policy"]["policy"] == client_policy("team-a-database", "app")
    logins = registered(monitor, rules.APPROLE_ROLE)
    assert logins["app-approle"]["tokenPolicies"] == ["team-a-client-app"]
    # The checks log in and read where the clients do.
    (checks,) = registered(monitor, CHECKS).values()
    clients = {unwrap(c)["name"]: unwrap(c) for c in unwrap(checks["clients"])}
    assert (clients["app"]["approle_mount"], clients["app"]["creds_path"]) == (
        "team-a-approle", "team-a-database/creds/app")
    # And the gate judges them as it judges the plain names.
    for urn, registration in monitor.get_registered_resources().items():
        resource_type = urn.split("::")[2].rsplit("$", 1)[-1]
        for policy in POLICIES:
            if isinstance(policy, ResourceValidationPolicy):
                found = violations(policy.name, resource_type, plain(registration.state),
                                   {"maxTtlCapSeconds": 86400, "adminRoles": ["dbcreds_admin"]})
                assert found == [], (urn, found)


def test_an_external_stack_without_a_vault_prefix_makes_the_names_it_always_made(
        external_monitor, monkeypatch, tmp_path):
    monitor = external_monitor
    run_external_program(monkeypatch, tmp_path, "")
    names = vault_names(monitor)
    assert {k: v for k, v in names.items() if k.endswith((".path", ".name"))} == {
        "engine-mount.path": "database", "engine-rotate-root.path": "database/rotate-root/app",
        "approle.path": "approle", "app-policy.name": "client-app", "reader-policy.name": "client-reader"}
    assert {v for k, v in names.items() if k.endswith(".backend")} == {"database", "approle"}


def test_the_dev_stack_gives_its_team_a_mount_policies_and_a_credential_of_its_own(monitor, monkeypatch):
    """dev's reports team: a mount capped at its max_ttl whose connection logs in as the team's user and
    serves the team's roles only, its client and team policies, the AppRole role team-reports with the
    team policy; its connection user's bootstrap password is among the checks' retired logins."""
    from components.vault_policies import team_client_policy, team_policy

    run_dev_program(monkeypatch)
    mounts = registered(monitor, "vault:index/mount:Mount")
    assert (mounts["team-reports-mount"]["path"], mounts["team-reports-mount"]["maxLeaseTtlSeconds"]) == (
        "team-reports-db", 3600)
    connection = registered(monitor, "vault:database/secretBackendConnection:SecretBackendConnection")[
        "team-reports-connection"]
    assert connection["allowedRoles"] == ["reports", "reports-*"]
    postgresql = unwrap(connection["postgresql"])
    assert postgresql["username"] == "dbcreds_team_reports_vault"
    assert "sslmode=verify-full" in postgresql["connectionUrl"]
    policies = registered(monitor, "vault:index/policy:Policy")
    assert policies["team-reports-client-policy"]["name"] == "client-team-reports"
    assert policies["team-reports-client-policy"]["policy"] == team_client_policy("team-reports-db")
    assert policies["team-reports-policy"]["policy"] == team_policy(
        "team-reports-db", "approle", "team-reports-", "client-team-reports")
    role = registered(monitor, "vault:appRole/authBackendRole:AuthBackendRole")["team-reports-approle"]
    assert (role["roleName"], role["tokenPolicies"], role["tokenNoDefaultPolicy"]) == (
        "team-reports", ["team-reports"], True)
    database = registered(monitor, "pulumi-python:dynamic:Resource")
    assert (database["team-reports-database"]["team"], database["team-reports-database"]["max_ttl"]) == (
        "reports", 3600)
    assert database["team-reports-group"]["group"] == "dbcreds_team_reports"
    assert database["team-reports-group"]["tables"] == ["public.orders"]
    checks = registered(monitor, CHECKS)["checks"]
    assert [r["username"] for r in unwrap(checks["retired_logins"])] == ["dbcreds_team_reports_vault"]
