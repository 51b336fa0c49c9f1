"""Every rule of the policy gate: the happy path passes, and each mutation is caught.

Props are in the engine's camelCase, as the pack receives them. A happy path is
what our components declare; each case changes one field (pulumi-policy-aws style).
"""

import copy
import json
from types import SimpleNamespace

import pytest
from pulumi_policy import ResourceValidationPolicy, StackValidationArgs
from pulumi_policy.proxy import unknown_checking_proxy

from components.kubernetes import manifests as k8s
from components.postgres_sql import creation_statements, revocation_statements
from components.vault_policies import client_policy
from policies.rules import client_access, common
from policies.pack import POLICIES
from tests.unit.policy import BY_NAME, violations


CONNECTION = {
    "backend": "database", "name": "app", "allowedRoles": ["reader", "app"], "verifyConnection": True,
    "postgresql": {"connectionUrl": "postgresql://{{username}}:{{password}}@127.0.0.1:15432/app"
                                    "?sslmode=verify-full&sslrootcert=/vault/tls/db-ca.crt",
                   "username": "dbcreds_admin", "passwordWo": "bootstrap", "passwordWoVersion": 1},
}
ROLE = {"backend": "database", "name": "app", "dbName": "app", "defaultTtl": 3600, "maxTtl": 28800,
        "creationStatements": creation_statements("dbcreds_group_app"),
        "revocationStatements": revocation_statements()}
STATIC_ROLE = {"backend": "database", "name": "svc", "dbName": "app", "username": "svc", "rotationPeriod": 86400}
POLICY = {"name": "client-reader", "policy": client_policy("database", "reader")}
APPROLE = {"backend": "approle", "roleName": "reader", "tokenPolicies": ["client-reader"], "tokenTtl": 900,
           "tokenMaxTtl": 3600, "secretIdTtl": 86400, "tokenNoDefaultPolicy": True}
#: What components/vault/kubernetes_access.py registers for a client.
K8S_ROLE = {"backend": "kubernetes", "roleName": "team-app", "boundServiceAccountNames": ["team-app"],
            "boundServiceAccountNamespaces": ["team-app"], "audience": "vault.dbcreds.svc",
            "tokenPolicies": ["client-team-app"], "tokenNoDefaultPolicy": True, "tokenTtl": 900, "tokenMaxTtl": 7200}
VAULT_SERVER = {"data_dir": "/d", "port": 18200, "key_shares": 1, "cert_pem": "cert", "key_pem": "key"}
DB_STATEFULSET = {"metadata": k8s.metadata("db", "ns", k8s.DB_APP, "db"),
                  "spec": k8s.postgres_statefulset("db", "dbcreds-postgres:1", "Never", "1Gi", None, "cm", "tls", "pw")}
VAULT_STATEFULSET = {"metadata": k8s.metadata("vault", "ns", k8s.VAULT_APP, "vault"),
                     "spec": k8s.openbao_statefulset("vault", "ns", "dbcreds-openbao:1", "Never", 3, "1Gi", None, "cm",
                                                     "tls", "seal")}

#: What components/docker/postgres.py registers (camelCase), its volume a named one.
CONTAINER_PROPS = {
    "name": "dbcreds-dev-db-postgres", "image": "sha256:0123", "networkMode": "host", "privileged": False,
    "capabilities": {"drops": ["ALL"], "adds": ["CHOWN", "FOWNER", "SETUID", "SETGID"]},
    "securityOpts": ["no-new-privileges"], "restart": "unless-stopped",
    "volumes": [{"volumeName": "dbcreds-dev-db-data", "containerPath": "/var/lib/postgresql/data"}],
}
HAPPY = {
    common.CONNECTION: CONNECTION, common.ROLE: ROLE, common.STATIC_ROLE: STATIC_ROLE, common.POLICY: POLICY,
    common.APPROLE_ROLE: APPROLE, common.OPENBAO_SERVER: VAULT_SERVER, common.K8S_AUTH_ROLE: K8S_ROLE,
    common.STATEFULSET: DB_STATEFULSET, common.CONTAINER: CONTAINER_PROPS,
}

#: The gate's config of the happy path's stack.
HAPPY_CONFIG = {"adminRoles": ["dbcreds_admin"], "allowedHostPaths": ["/srv/stack/data"]}


def changed(props: dict, path: str, value) -> dict:
    """A deep copy of props with the dotted path set (None removes it)."""
    props = copy.deepcopy(props)
    *parents, last = path.split(".")
    target = props
    for key in parents:
        target = target[key]
    if value is None:
        target.pop(last, None)
    else:
        target[last] = value
    return props


@pytest.mark.parametrize("policy", [p.name for p in POLICIES if isinstance(p, ResourceValidationPolicy)])
def test_the_happy_path_passes_every_rule(policy):
    for resource_type, props in HAPPY.items():
        assert violations(policy, resource_type, props, HAPPY_CONFIG) == []


URL = "postgresql.connectionUrl"
POD = "spec.template.spec"
CONTAINER = "spec.template.spec.containers"

CASES = [
    ("database-connection-allowed-roles", common.CONNECTION, "allowedRoles", ["*"], "wildcard"),
    ("database-connection-allowed-roles", common.CONNECTION, "allowedRoles", None, "empty"),
    ("database-connection-templated-credentials", common.CONNECTION, URL,
     "postgresql://admin:hunter2@db:5432/app?sslmode=verify-full&sslrootcert=/c", "templating"),
    ("database-connection-templated-credentials", common.CONNECTION, URL,
     "postgresql://{{username}}:s3cret@db:5432/app?sslmode=verify-full&sslrootcert=/c", "templating"),
    ("database-connection-verify-full", common.CONNECTION, URL,
     "postgresql://{{username}}:{{password}}@db:5432/app?sslmode=disable", "sslmode=verify-full"),
    ("database-connection-verify-full", common.CONNECTION, URL,
     "postgresql://{{username}}:{{password}}@db:5432/app?sslmode=require", "sslmode=verify-full"),
    ("database-connection-verify-full", common.CONNECTION, URL,
     "postgresql://{{username}}:{{password}}@db:5432/app?sslmode=verify-full", "without a CA"),
    ("dynamic-role-ttls", common.ROLE, "maxTtl", None, "must both be set"),
    ("dynamic-role-ttls", common.ROLE, "defaultTtl", 30000, "longer than maxTtl"),
    ("dynamic-role-ttls", common.ROLE, "maxTtl", 90000, "over this environment's cap"),
    ("dynamic-role-valid-until", common.ROLE, "creationStatements",
     ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' IN ROLE g"], "VALID UNTIL"),
    # The walkthroughs' SUPERUSER and GRANT ALL.
    ("dynamic-role-least-privilege", common.ROLE, "creationStatements",
     ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' SUPERUSER"],
     "SUPERUSER"),
    ("dynamic-role-least-privilege", common.ROLE, "creationStatements",
     ["CREATE USER {{name}} WITH PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'",
      "GRANT ALL ON DATABASE app TO {{name}}"], "GRANT ALL"),
    ("dynamic-role-least-privilege", common.ROLE, "creationStatements",
     ["CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' CREATEROLE"],
     "CREATEROLE"),
    ("dynamic-role-least-privilege", common.ROLE, "creationStatements",
     ["CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE pg_write_all_data"],
     "predefined role"),
    ("dynamic-role-least-privilege", common.ROLE, "creationStatements",
     ["CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'",
      'GRANT "dbcreds_admin" TO "{{name}}"'], "admin role"),
    ("dynamic-role-revocation", common.ROLE, "revocationStatements", None, "left behind"),
    # Privileges revoked, the user kept: a dead role per lease.
    ("dynamic-role-revocation", common.ROLE, "revocationStatements",
     ['REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA public FROM "{{name}}"', 'REVOKE "team" FROM "{{name}}"'],
     "never drop the user"),
    ("dynamic-role-revocation", common.ROLE, "revocationStatements", ['DROP ROLE IF EXISTS "team"'],
     "never drop the user"),
    ("database-connection-not-superuser", common.CONNECTION, "postgresql.username", "postgres",
     "'postgres', the database's superuser"),
    ("database-connection-not-superuser", common.CONNECTION, "postgresql.username", "root",
     "'root', the database's superuser"),
    ("database-connection-not-superuser", common.CONNECTION, URL,
     "postgresql://postgres@db:5432/app?sslmode=verify-full&sslrootcert=/c", "'postgres', the database's superuser"),
    ("approle-secret-id-required", common.APPROLE_ROLE, "bindSecretId", False, "role_id alone"),
    ("kubernetes-workload-hardened", common.STATEFULSET, f"{POD}.securityContext.runAsNonRoot", None, "runAsNonRoot"),
    ("kubernetes-workload-hardened", common.STATEFULSET, f"{POD}.automountServiceAccountToken", None, "API token"),
    ("kubernetes-workload-hardened", common.STATEFULSET, f"{POD}.containers",
     [{"name": "pg", "image": "postgres:15", "securityContext": {"allowPrivilegeEscalation": False,
                                                                 "readOnlyRootFilesystem": True,
                                                                 "capabilities": {"drop": ["ALL"]}}}],
     "requests and a memory limit"),
    ("kubernetes-workload-hardened", common.STATEFULSET, f"{POD}.containers",
     [{"name": "pg", "resources": k8s.resources("1", "1Gi"), "securityContext": {"privileged": True}}],
     "allowPrivilegeEscalation"),
    ("kubernetes-workload-hardened", common.STATEFULSET, f"{POD}.hostNetwork", True, "hostNetwork is true"),
    ("kubernetes-workload-hardened", common.STATEFULSET, f"{POD}.hostPID", True, "hostPID is true"),
    ("static-role-rotation", common.STATIC_ROLE, "rotationPeriod", None, "never rotate"),
    ("static-role-rotation", common.STATIC_ROLE, "rotationPeriod", 86400 * 90, "over this environment's cap"),
    ("client-policy-least-privilege", common.POLICY, "policy",
     'path "database/creds/*" {\n  capabilities = ["read"]\n}\n', "globs over creds paths"),
    ("client-policy-least-privilege", common.POLICY, "policy",
     'path "database/creds/+" {\n  capabilities = ["read"]\n}\n', "globs over creds paths"),
    ("client-policy-least-privilege", common.POLICY, "policy",
     'path "database/creds/read*" {\n  capabilities = ["read"]\n}\n', "globs over creds paths"),
    ("client-policy-least-privilege", common.POLICY, "policy",
     'path "+/creds/reader" {\n  capabilities = ["read"]\n}\n', "globs over creds paths"),
    ("client-policy-least-privilege", common.POLICY, "policy",
     'path "database/*" {\n  capabilities = ["read"]\n}\n', "wildcard over a whole mount"),
    ("client-policy-least-privilege", common.POLICY, "policy",
     'path "database/creds/reader" {\n  capabilities = ["read", "sudo"]\n}\n', "sudo"),
    ("client-policy-least-privilege", common.POLICY, "policy",
     'path "sys/mounts" {\n  capabilities = ["read"]\n}\n', "sys/"),
    ("client-policy-least-privilege", common.POLICY, "policy",
     'path "sys/leases/revoke-prefix/database/creds" {\n  capabilities = ["update"]\n}\n', "by prefix"),
    ("client-policy-least-privilege", common.POLICY, "policy",
     'path "sys/leases/revoke/*" {\n  capabilities = ["update"]\n}\n', "beyond the creds path"),
    # Another client's leases, by the path form.
    ("client-policy-least-privilege", common.POLICY, "policy",
     client_policy("database", "reader") + 'path "sys/leases/revoke/database/creds/writer/*" {\n'
     '  capabilities = ["update"]\n}\n', "beyond the creds path"),
    ("client-policy-engine-untouched", common.POLICY, "policy",
     client_policy("database", "reader") + 'path "database/rotate-root/app" {\n  capabilities = ["update"]\n}\n',
     "rotate-root endpoint"),
    ("client-policy-engine-untouched", common.POLICY, "policy",
     'path "database/config/app" {\n  capabilities = ["update"]\n}\n', "config endpoint"),
    ("client-policy-engine-untouched", common.POLICY, "policy",
     '{"path": {"database/roles/app": {"capabilities": ["create"]}}}', "roles endpoint"),
    ("client-policy-engine-untouched", common.POLICY, "policy",
     'path "database/static-roles/svc" {\n  capabilities = ["delete"]\n}\n', "static-roles endpoint"),
    ("client-policy-engine-untouched", common.POLICY, "policy",
     'path "team/db/rotate-role/svc" {\n  capabilities = ["update"]\n}\n', "rotate-role endpoint"),
    # A glob reaches them too.
    ("client-policy-engine-untouched", common.POLICY, "policy",
     'path "database/rot*" {\n  capabilities = ["update"]\n}\n', "rotate-root endpoint"),
    ("client-policy-engine-untouched", common.POLICY, "policy",
     'path "database/+/app" {\n  capabilities = ["update"]\n}\n', "any of its endpoints"),
    ("client-policy-least-privilege", common.POLICY, "policy", 'path "x" {', "neither valid HCL nor JSON"),
    ("approle-bounded", common.APPROLE_ROLE, "tokenMaxTtl", None, "must be set"),
    ("approle-bounded", common.APPROLE_ROLE, "tokenMaxTtl", 86400 * 7, "over the cap"),
    ("approle-bounded", common.APPROLE_ROLE, "secretIdTtl", None, "never expire"),
    ("approle-bounded", common.APPROLE_ROLE, "tokenPolicies", ["client-reader", "root"], "root"),
    ("approle-bounded", common.APPROLE_ROLE, "tokenNoDefaultPolicy", None, "default policy"),
    ("kubernetes-auth-bounded", common.K8S_AUTH_ROLE, "boundServiceAccountNames", ["*"], "'*' wildcard"),
    ("kubernetes-auth-bounded", common.K8S_AUTH_ROLE, "boundServiceAccountNames", ["team-*"], "'*' wildcard"),
    ("kubernetes-auth-bounded", common.K8S_AUTH_ROLE, "boundServiceAccountNamespaces", ["*"], "'*' wildcard"),
    ("kubernetes-auth-bounded", common.K8S_AUTH_ROLE, "boundServiceAccountNamespaces", None, "is empty"),
    ("kubernetes-auth-bounded", common.K8S_AUTH_ROLE, "boundServiceAccountNamespaceSelector",
     '{"matchLabels": {"team": "a"}}', "namespace so labelled"),
    ("kubernetes-auth-bounded", common.K8S_AUTH_ROLE, "audience", None, "audience is unset"),
    ("kubernetes-auth-bounded", common.K8S_AUTH_ROLE, "tokenMaxTtl", None, "must be set"),
    ("kubernetes-auth-bounded", common.K8S_AUTH_ROLE, "tokenMaxTtl", 86400 * 2, "over the cap"),
    ("kubernetes-auth-bounded", common.K8S_AUTH_ROLE, "tokenPeriod", 3600, "renewed forever"),
    ("kubernetes-auth-bounded", common.K8S_AUTH_ROLE, "tokenPolicies", ["client-team-app", "root"], "root"),
    ("kubernetes-auth-bounded", common.K8S_AUTH_ROLE, "tokenNoDefaultPolicy", None, "default policy"),
    ("vault-server-hardened", common.OPENBAO_SERVER, "cert_pem", None, "cert_pem is empty"),
    ("vault-server-hardened", common.OPENBAO_SERVER, "key_pem", "", "key_pem is empty"),
    ("docker-container-hardened", common.CONTAINER, "privileged", True, "privileged is true"),
    ("docker-container-hardened", common.CONTAINER, "capabilities.drops", [], "drop every capability"),
    ("docker-container-hardened", common.CONTAINER, "capabilities.adds", ["CHOWN", "SYS_ADMIN"], "SYS_ADMIN"),
    ("docker-container-hardened", common.CONTAINER, "securityOpts", None, "no-new-privileges"),
    ("docker-container-hardened", common.CONTAINER, "pidMode", "host", "pidMode is host"),
    ("docker-container-hardened", common.CONTAINER, "volumes",
     [{"hostPath": "/etc", "containerPath": "/etc"}], "host path /etc"),
    ("dynamic-role-connection-limit", common.ROLE, "creationStatements",
     ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE g"],
     "CONNECTION LIMIT"),
]


@pytest.mark.parametrize("policy, resource_type, path, value, expected", CASES)
def test_each_violation_is_caught_with_a_message_naming_the_field(policy, resource_type, path, value, expected):
    found = violations(policy, resource_type, changed(HAPPY[resource_type], path, value), HAPPY_CONFIG)
    assert found and any(expected in message for message in found), found
    assert all(message.startswith("r: ") for message in found)
    # No violation message quotes a secret value.
    assert not any("hunter2" in m or "s3cret" in m for m in found)


def test_levels_mandatory_for_tls_grants_and_lifetimes_advisory_for_the_rest():
    levels = {p.name: p.enforcement_level.value for p in POLICIES}
    assert {n for n, level in levels.items() if level == "advisory"} == {
        "dynamic-role-connection-limit", "kubernetes-database-isolated", "kv-database-password-during-migration"}
    assert all(level in ("mandatory", "advisory") for level in levels.values())


def test_a_policy_without_config_gets_its_schemas_defaults():
    from policies.pack import APPROLE_CAPS, defaults

    assert defaults(APPROLE_CAPS) == {"maxTokenTtlSeconds": 86400, "maxSecretIdTtlSeconds": 30 * 86400}
    # Nothing given: the schema's cap of a day holds.
    assert "over the cap of 86400s" in violations("approle-bounded", common.APPROLE_ROLE,
                                                   changed(APPROLE, "tokenMaxTtl", 86401))[0]


def test_rules_judge_only_their_own_type():
    assert violations("dynamic-role-ttls", common.CONNECTION, {"maxTtl": 10**9}) == []


def test_a_config_lowers_the_cap():
    assert violations("dynamic-role-ttls", common.ROLE, ROLE, {"maxTtlCapSeconds": 3600})


def resource(resource_type: str, name: str, props: dict):
    return SimpleNamespace(resource_type=resource_type, name=name, props=props)


def test_root_rotation_needs_an_endpoint_per_connection():
    rotate = resource(common.ENDPOINT, "rotate", {"path": "database/rotate-root/app"})
    connection = resource(common.CONNECTION, "conn", CONNECTION)
    found: list[str] = []
    args = StackValidationArgs([connection, rotate], {})
    BY_NAME["root-credentials-rotated"].validate(args, lambda m, urn=None: found.append(m))
    assert found == []
    args = StackValidationArgs([connection], {})
    BY_NAME["root-credentials-rotated"].validate(args, lambda m, urn=None: found.append(m))
    assert found and "database/rotate-root/app" in found[0]


def stack_violations(policy: str, resources, config: dict | None = None) -> list[str]:
    found: list[str] = []
    BY_NAME[policy].validate(StackValidationArgs(resources, config or {}), lambda m, urn=None: found.append(m))
    return found


#: What components/vault/secrets_engine.py registers beside the connection: the endpoint and its schedule.
ROTATE_ROOT = {"path": "database/rotate-root/app", "dataJson": "{}", "disableRead": True, "disableDelete": True}
ROOT_SCHEDULE = {"rotate_after": 86400, "rotates": "database/rotate-root/app", "created_at": None}
PRODUCTION_ROOT = {"requireRotationSchedule": True, "maxRootRotationSeconds": 7 * 86400}


def root_violations(schedule: dict | None, config: dict | None = None) -> list[str]:
    """What root-credentials-rotated reports for the connection, its rotate-root and this schedule."""
    resources = [resource(common.CONNECTION, "conn", CONNECTION), resource(common.ENDPOINT, "rotate", ROTATE_ROOT)]
    if schedule is not None:
        resources.append(resource(common.ROTATION, "root-rotation", unknown_checking_proxy(schedule)))
    return stack_violations("root-credentials-rotated", resources, config)


def test_production_rotates_root_on_a_schedule_within_the_cap():
    assert root_violations(ROOT_SCHEDULE, PRODUCTION_ROOT) == []
    # Rotated once only: enough elsewhere, refused in production.
    assert root_violations(None) == []
    assert root_violations(None, PRODUCTION_ROOT) == [
        "connection conn: root credentials are rotated once, never on a schedule; replace the endpoint at "
        "database/rotate-root/app with a Rotation (components.vault.rotation) whose rotates names it "
        "(root_rotation_period)"]
    # Another connection's schedule, or a secret_id's, is none of this one's.
    for rotates in ("database/rotate-root/other", ""):
        assert "never on a schedule" in root_violations({**ROOT_SCHEDULE, "rotates": rotates}, PRODUCTION_ROOT)[0]
    # Over the cap: production's, and the schema's 30 days anywhere.
    assert root_violations({**ROOT_SCHEDULE, "rotate_after": 8 * 86400}, PRODUCTION_ROOT) == [
        "connection conn: root credentials are rotated every 691200s, over this environment's cap of 604800s "
        "(root_rotation_period)"]
    (anywhere,) = root_violations({**ROOT_SCHEDULE, "rotate_after": 31 * 86400})
    assert "over this environment's cap of 2592000s" in anywhere


def test_a_root_schedule_not_known_at_preview_is_judged_at_update():
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    assert root_violations({**ROOT_SCHEDULE, "rotates": UNKNOWN_STRING_VALUE}, PRODUCTION_ROOT) == []


NODE = {"cert_pem": "c", "key_pem": "k", "seal": "static"}


def test_production_runs_several_openbao_nodes_that_unseal_themselves():
    production = {"minNodes": 3, "requireAutoUnseal": True}
    cluster = [resource(common.OPENBAO_SERVER, f"vault-{i}", NODE) for i in range(3)]
    assert stack_violations("vault-highly-available", cluster, production) == []
    single = stack_violations("vault-highly-available", cluster[:1], production)
    assert single and "1 node(s)" in single[0] and "vault_nodes" in single[0]
    shamir = [resource(common.OPENBAO_SERVER, f"vault-{i}", {"cert_pem": "c"}) for i in range(3)]
    assert "Shamir" in stack_violations("vault-highly-available", shamir, production)[0]
    # Elsewhere one Shamir node is fine (the schema's defaults).
    assert stack_violations("vault-highly-available", shamir[:1]) == []


def test_production_on_kubernetes_counts_replicas_and_reads_the_seal_in_the_config():
    production = {"minNodes": 3, "requireAutoUnseal": True}
    labels = {"metadata": {"labels": k8s.labels(k8s.VAULT_APP, "vault")}}
    statefulset = resource(common.STATEFULSET, "vault", {**labels, "spec": {"replicas": 3}})
    static = resource(common.CONFIG_MAP, "vault-config", {**labels, "data": {"config.hcl": 'seal "static" {\n}\n'}})
    shamir = resource(common.CONFIG_MAP, "vault-config", {**labels, "data": {"config.hcl": 'storage "raft" {}'}})
    assert stack_violations("vault-highly-available", [statefulset, static], production) == []
    one = resource(common.STATEFULSET, "vault", {**labels, "spec": {"replicas": 1}})
    assert "1 OpenBao replica(s)" in stack_violations("vault-highly-available", [one, static], production)[0]
    assert "auto-unseal" in stack_violations("vault-highly-available", [statefulset, shamir], production)[0]


def isolation_violations(resources) -> list[str]:
    found: list[str] = []
    BY_NAME["kubernetes-database-isolated"].validate(StackValidationArgs(resources, {}),
                                                     lambda m, urn=None: found.append(m))
    return found


def test_the_database_must_be_isolated_by_network_policies():
    db = resource(common.STATEFULSET, "db", DB_STATEFULSET)
    policies = [resource(common.NETWORK_POLICY, name, {"spec": spec})
                for name, spec in k8s.network_policies("ns").items()]
    assert isolation_violations([db, *policies]) == []
    without_deny = [p for p in policies if p.name != "default-deny-ingress"]
    assert "default-deny" in isolation_violations([db, *without_deny])[0]
    only_deny = [p for p in policies if p.name == "default-deny-ingress"]
    assert "opens the database's pods" in isolation_violations([db, *only_deny])[0]
    open_to_all = resource(common.NETWORK_POLICY, "open", {"spec": {
        "podSelector": {"matchLabels": k8s.labels(k8s.DB_APP)}, "ingress": [{"ports": [{"port": 5432}]}]}})
    assert "any pod" in isolation_violations([db, *only_deny, open_to_all])[0]


def test_the_client_policy_grants_exactly_its_own_paths():
    assert client_access.parse_policy(client_policy("database", "reader")) == {
        "database/creds/reader": {"read"},
        "sys/leases/renew/database/creds/reader/*": {"update"},
        "sys/leases/revoke/database/creds/reader/*": {"update"},
        # The body form the CLI, the agent and hvac use, limited to this creds path's lease ids.
        "sys/leases/renew": {"update"},
        "sys/leases/revoke": {"update"},
        "auth/token/lookup-self": {"read"},
        "auth/token/renew-self": {"update"},
        "auth/token/revoke-self": {"update"},
    }
    for path in ("sys/leases/renew", "sys/leases/revoke"):
        assert client_access.allowed_lease_ids(client_policy("database", "reader"), path) == ["database/creds/reader/*"]


@pytest.mark.parametrize("limit", [None, '"lease_id" = ["*"]', '"lease_id" = ["database/creds/*"]',
                                   '"lease_id" = []', '"increment" = []'])
def test_a_body_form_lease_path_must_be_limited_to_its_own_creds_path(limit):
    parameters = f"\n  allowed_parameters = {{\n    {limit}\n  }}" if limit else ""
    policy = f'path "sys/leases/renew" {{\n  capabilities = ["update"]{parameters}\n}}\n'
    found = violations("client-policy-least-privilege", common.POLICY, {"policy": policy})
    assert found and "takes any lease id in its body" in found[0]
    own = 'path "sys/leases/renew" {\n  capabilities = ["update"]\n  allowed_parameters = {\n' \
          '    "lease_id" = ["database/creds/reader/*"]\n  }\n}\n'
    reads = 'path "database/creds/reader" {\n  capabilities = ["read"]\n}\n'
    assert violations("client-policy-least-privilege", common.POLICY, {"policy": reads + own}) == []
    # Its own leases are those of the creds it reads: another role's are not.
    others = reads.replace("reader", "writer") + own
    assert "takes any lease id in its body" in violations("client-policy-least-privilege", common.POLICY,
                                                          {"policy": others})[0]


def test_what_our_own_components_declare_passes_the_rules_that_read_meaning():
    """The migration's policies at every stage, the store key's, CockroachDB's revocation SQL, the superuser
    names a stack may widen."""
    from components import cockroach_sql
    from components.vault.store_key import store_key_policy
    from components.vault_policies import migration_policy

    policies = [migration_policy(stage, "kv", "app", "database", "app") for stage in ("static", "dual", "dynamic")]
    for text in [*policies, store_key_policy("transit-db", "cockroach-store")]:
        for policy in ("client-policy-least-privilege", "client-policy-engine-untouched"):
            assert violations(policy, common.POLICY, {"policy": text}) == [], (policy, text)
    cockroach = changed(ROLE, "revocationStatements", cockroach_sql.revocation_statements("dbcreds_group_app"))
    assert violations("dynamic-role-revocation", common.ROLE, cockroach) == []
    named = changed(CONNECTION, "postgresql.username", "platform_super")
    assert violations("database-connection-not-superuser", common.CONNECTION, named) == []
    assert violations("database-connection-not-superuser", common.CONNECTION, named,
                      {"superuserNames": ["platform_super"]})


def test_a_certificate_still_being_made_is_not_a_missing_one():
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    unknown = {**VAULT_SERVER, "cert_pem": UNKNOWN_STRING_VALUE, "key_pem": UNKNOWN_STRING_VALUE}
    assert violations("vault-server-hardened", common.OPENBAO_SERVER, unknown) == []


def kv_findings(resources) -> dict[str, list[str]]:
    """What each KV-password policy reports for these resources, handed over as the engine hands them."""
    found: dict[str, list[str]] = {}
    for name in ("kv-database-password-during-migration", "kv-database-password-after-migration"):
        resources = [resource(r.resource_type, r.name, unknown_checking_proxy(r.props)) for r in resources]
        BY_NAME[name].validate(StackValidationArgs(resources, {}),
                               lambda m, urn=None, n=name: found.setdefault(n, []).append(m))
    return found


def kv_secret(metadata: dict | None, data: dict | None = None):
    props = {"mount": "products-api-kv", "name": "database"}
    if metadata is not None:
        props["customMetadata"] = {"data": metadata}
    if data is not None:
        props["dataJson"] = json.dumps(data)
    return resource(common.KV_SECRET, "products-api-kv-secret", props)


DYNAMIC_ROLE = resource(common.ROLE, "role", ROLE)


@pytest.mark.parametrize("stage, policy", [("dual", "kv-database-password-during-migration"),
                                           ("dynamic", "kv-database-password-after-migration"),
                                           ("static", "kv-database-password-after-migration")])
def test_a_kv_password_beside_a_dynamic_role_is_advisory_at_dual_only(stage, policy):
    found = kv_findings([kv_secret({"database": "app", "migration_stage": stage}), DYNAMIC_ROLE])
    assert list(found) == [policy]
    assert f"'{stage}'" in found[policy][0] and "products-api-kv-secret" in found[policy][0]


def test_a_kv_password_with_no_dynamic_role_on_its_database_is_no_finding():
    assert kv_findings([kv_secret({"database": "app", "migration_stage": "static"})]) == {}
    assert kv_findings([kv_secret({"database": "other", "migration_stage": "dynamic"}), DYNAMIC_ROLE]) == {}
    # Not a password: no database named, no password in the data.
    assert kv_findings([kv_secret(None, {"api_key": "x"}), DYNAMIC_ROLE]) == {}


def test_a_bare_kv_password_beside_any_dynamic_role_is_a_violation_never_printing_it():
    found = kv_findings([kv_secret(None, {"username": "u", "password": "hunter2"}), DYNAMIC_ROLE])
    assert list(found) == ["kv-database-password-after-migration"]
    assert "no migration is declared" in found["kv-database-password-after-migration"][0]
    assert "hunter2" not in found["kv-database-password-after-migration"][0]


def test_a_kv_secret_not_known_at_preview_is_judged_at_update():
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    unknown = resource(common.KV_SECRET, "s", {"customMetadata": UNKNOWN_STRING_VALUE})
    assert kv_findings([unknown, DYNAMIC_ROLE]) == {}


def test_a_host_path_under_the_stacks_data_folder_may_be_mounted():
    props = changed(CONTAINER_PROPS, "volumes", [{"hostPath": "/srv/stack/data/x", "containerPath": "/x"}])
    assert violations("docker-container-hardened", common.CONTAINER, props,
                      {"allowedHostPaths": ["/srv/stack/data"]}) == []
    props = changed(CONTAINER_PROPS, "volumes", [{"hostPath": "/srv/stack/database", "containerPath": "/x"}])
    assert violations("docker-container-hardened", common.CONTAINER, props,
                      {"allowedHostPaths": ["/srv/stack/data"]})


API_TOKEN = k8s.api_token_volume("api-token")


def test_only_openbaos_pods_carry_an_api_token_projected_read_only_at_the_standard_path():
    reviewer = {"metadata": VAULT_STATEFULSET["metadata"],
                "spec": k8s.openbao_statefulset("vault", "ns", "dbcreds-openbao:1", "Never", 3, "1Gi", None, "cm",
                                                "tls", "seal", service_account="vault")}
    pod = reviewer["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "vault" and pod["automountServiceAccountToken"] is False
    mount = {"name": "api-token", "mountPath": k8s.API_TOKEN_DIR, "readOnly": True}
    assert mount in pod["containers"][0]["volumeMounts"]
    assert violations("kubernetes-workload-hardened", common.STATEFULSET, reviewer) == []
    # Elsewhere, or writable: refused.
    moved = copy.deepcopy(reviewer)
    moved["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][-1]["mountPath"] = "/openbao/token"
    assert "mounted elsewhere" in violations("kubernetes-workload-hardened", common.STATEFULSET, moved)[0]
    writable = copy.deepcopy(reviewer)
    writable["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][-1].pop("readOnly")
    assert "writable" in violations("kubernetes-workload-hardened", common.STATEFULSET, writable)[0]
    # Another workload's pods: no token the API server takes (none, or the API server's audience), as a
    # StatefulSet or a Deployment; a token for Vault (an audience of its own) is no API token.
    for audience in (None, "https://kubernetes.default.svc.cluster.local"):
        volume = copy.deepcopy(API_TOKEN)
        if audience:
            volume["projected"]["sources"][0]["serviceAccountToken"]["audience"] = audience
        database = changed(DB_STATEFULSET, f"{POD}.volumes", [*DB_STATEFULSET["spec"]["template"]["spec"]["volumes"],
                                                               volume])
        for kind in (common.STATEFULSET, common.DEPLOYMENT):
            found = violations("kubernetes-workload-hardened", kind, database)
            assert any("projects an API token" in m for m in found), found
    vault_token = copy.deepcopy(API_TOKEN)
    vault_token["projected"]["sources"][0]["serviceAccountToken"]["audience"] = "vault.dbcreds.svc"
    assert violations("kubernetes-workload-hardened", common.DEPLOYMENT, changed(
        DB_STATEFULSET, f"{POD}.volumes", [vault_token])) == []


def test_the_openbao_statefulset_is_hardened_and_spread():
    assert violations("kubernetes-workload-hardened", common.STATEFULSET, VAULT_STATEFULSET) == []
    budget = resource(common.PDB, "vault", k8s.disruption_budget("vault", "ns", k8s.VAULT_APP))
    statefulset = resource(common.STATEFULSET, "vault", VAULT_STATEFULSET)
    production = {"requireSpread": True}
    assert stack_violations("kubernetes-vault-spread", [statefulset, budget], production) == []
    assert "PodDisruptionBudget" in stack_violations("kubernetes-vault-spread", [statefulset], production)[0]
    together = resource(common.STATEFULSET, "vault", changed(VAULT_STATEFULSET, f"{POD}.affinity", None))
    assert "anti-affinity" in stack_violations("kubernetes-vault-spread", [together, budget], production)[0]
    # Elsewhere it is not asked.
    assert stack_violations("kubernetes-vault-spread", [together]) == []


def test_production_keeps_no_root_token():
    production = {"requireNoRootToken": True}
    handed_over = resource(common.OPENBAO_INIT, "vault-init", {"keep_root_token": False})
    assert stack_violations("vault-no-root-token", [handed_over], production) == []
    kept = resource(common.OPENBAO_INIT, "vault-init", {"address": "https://x"})
    assert "keeps the root token" in stack_violations("vault-no-root-token", [kept], production)[0]
    local = resource(common.OPENBAO_SERVER, "vault-openbao", VAULT_SERVER)
    assert "local OpenBao server keeps its root token" in stack_violations("vault-no-root-token", [local],
                                                                          production)[0]
    assert stack_violations("vault-no-root-token", [kept, local]) == []


def test_containers_run_only_images_the_stack_builds():
    policy = BY_NAME["docker-images-built-here"]

    def judged(*resources) -> list[str]:
        found: list[str] = []
        policy.validate(StackValidationArgs(list(resources), {}), lambda m, urn=None: found.append(m))
        return found

    image = resource(common.IMAGE, "db-image", {"imageName": "dbcreds-postgres:1", "repoDigest": "sha256:0123",
                                               "skipPush": True})
    container = resource(common.CONTAINER, "db-container", CONTAINER_PROPS)
    assert judged(image, container) == []
    pulled = resource(common.CONTAINER, "db-container", {**CONTAINER_PROPS, "image": "postgres:15"})
    assert any("not one the stack builds" in m for m in judged(image, pulled))
    assert any("skipPush" in m for m in judged(resource(common.IMAGE, "db-image", {
        "imageName": "dbcreds-postgres:1", "repoDigest": "sha256:0123", "skipPush": False}), container))
    assert any("pulls from a registry" in m for m in judged(
        image, container, resource(common.REMOTE_IMAGE, "pg", {"name": "postgres:15"})))
