"""The rules of how clients reach their credentials (policies/rules/client_access.py): client
policies, AppRole, Kubernetes auth. Each mutation of the happy path (tests/unit/policy.py) is caught."""

import pytest

from components.vault_policies import client_policy
from policies.rules import client_access, common
from tests.unit.policy import assert_caught, violations

CASES = [
    ("approle-secret-id-required", common.APPROLE_ROLE, "bindSecretId", False, "role_id alone"),
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
]


@pytest.mark.parametrize("policy, resource_type, path, value, expected", CASES)
def test_each_violation_is_caught_with_a_message_naming_the_field(policy, resource_type, path, value, expected):
    assert_caught(policy, resource_type, path, value, expected)


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
    """The migration's policies at every stage, the store key's."""
    from components.vault.store_key import store_key_policy
    from components.vault_policies import migration_policy

    policies = [migration_policy(stage, "kv", "app", "database", "app") for stage in ("static", "dual", "dynamic")]
    for text in [*policies, store_key_policy("transit-db", "cockroach-store")]:
        for policy in ("client-policy-least-privilege", "client-policy-engine-untouched"):
            assert violations(policy, common.POLICY, {"policy": text}) == [], (policy, text)


#: The database mount of a stack that shares its Vault (vault_prefix team-a).
PREFIXED = "team-a-database"


@pytest.mark.parametrize("policy, resource_type, path, value, expected",
                         [c for c in CASES if isinstance(c[3], str) and "database/" in c[3]])
def test_a_prefixed_mount_is_judged_as_the_plain_one(policy, resource_type, path, value, expected):
    """Several stacks in one Vault name their mounts `<prefix>-database`: what is caught under
    `database/` is caught there too."""
    assert_caught(policy, resource_type, path, value.replace("database/", f"{PREFIXED}/"), expected)


def test_a_clients_own_policy_on_a_prefixed_mount_passes():
    for rule in ("client-policy-least-privilege", "client-policy-engine-untouched"):
        assert violations(rule, common.POLICY, {"policy": client_policy(PREFIXED, "reader")}) == []
    assert client_access.allowed_lease_ids(client_policy(PREFIXED, "reader"), "sys/leases/renew") == [
        f"{PREFIXED}/creds/reader/*"]


def test_a_teams_policies_pass_and_each_widening_is_caught():
    """A team's client policy reads every creds path of the team's own mount (and no other mount's);
    its team policy writes that mount's roles and AppRole roles pinned to the client policy, nothing else."""
    from components.vault_policies import render_policy, team_client_policy, team_policy

    team = team_policy("team-reports-db", "approle", "team-reports-", "client-team-reports")
    clients = team_client_policy("team-reports-db")
    for rule in ("client-policy-least-privilege", "client-policy-engine-untouched", "team-policy-bounded"):
        assert violations(rule, common.POLICY, {"name": "team-reports", "policy": team}) == [], rule
        assert violations(rule, common.POLICY, {"name": "client-team-reports", "policy": clients}) == [], rule
        # Prefixed where a stack shares its Vault.
        prefixed = team_policy("s1-team-reports-db", "s1-approle", "team-reports-", "s1-client-team-reports")
        assert violations(rule, common.POLICY, {"name": "s1-team-reports", "policy": prefixed}) == [], rule
    # The mount-wide glob is a team's client policy's only, on its own mount only.
    assert "globs over creds paths" in violations("client-policy-least-privilege", common.POLICY,
                                                  {"name": "client-reader", "policy": clients})[0]
    assert "globs over creds paths" in violations("client-policy-least-privilege", common.POLICY, {
        "name": "client-team-other", "policy": clients})[0]
    # The team policy's widenings: another policy on its AppRole roles, another mount, sys/, policies.
    for widened, expected in (
        (team_policy("team-reports-db", "approle", "team-reports-", "client-reader"), "other policies"),
        (team_policy("team-other-db", "approle", "team-reports-", "client-team-reports"), "reaches beyond"),
        (team.replace("team-reports-*", "team-*"), "reaches beyond"),
        (team.replace('"policies" = []', '"policies" = ["x"]'), "deprecated 'policies'"),
        (team.replace('"token_no_default_policy" = [true, "true"]', '"token_no_default_policy" = []'),
         "default policy"),
        (team + render_policy([("sys/policies/acl/*", ["create", "update"])]), "reaches beyond"),
        (team + render_policy([("sys/mounts", "read")]), "reaches beyond"),
        (team + render_policy([("team-reports-db/config/*", "read")]), "reaches beyond"),
        (team + render_policy([("team-reports-db/creds/*", "update")]), "read only"),
        (team.replace('capabilities = ["read"]', 'capabilities = ["read", "sudo"]'), "sudo"),
    ):
        found = violations("team-policy-bounded", common.POLICY, {"name": "team-reports", "policy": widened})
        assert any(expected in f for f in found), (expected, found)
