"""The database secrets engine's rules (policies/rules/database_engine.py): connections, dynamic and
static roles, root rotation, KV passwords beside dynamic roles. Each mutation of the happy path
(tests/unit/policy.py) is caught."""

import json

import pytest
from pulumi_policy import StackValidationArgs
from pulumi_policy.proxy import unknown_checking_proxy

from policies.rules import common
from tests.unit.policy import (
    BY_NAME,
    CONNECTION,
    ROLE,
    STATIC_ROLE,
    assert_caught,
    changed,
    resource,
    stack_violations,
    violations,
)

URL = "postgresql.connectionUrl"

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
    # A privilege of its own: the spec's tables reached around the group, and a DROP ROLE that fails.
    ("dynamic-role-least-privilege", common.ROLE, "creationStatements",
     ["CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' CONNECTION LIMIT 5",
      'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}"'], "to the user itself"),
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
    ("database-connection-verified", common.CONNECTION, "verifyConnection", False, "verifyConnection is false"),
    ("static-role-rotation", common.STATIC_ROLE, "rotationPeriod", None, "never rotate"),
    ("static-role-rotation", common.STATIC_ROLE, "rotationPeriod", 86400 * 90, "over this environment's cap"),
    ("dynamic-role-connection-limit", common.ROLE, "creationStatements",
     ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE g"],
     "CONNECTION LIMIT"),
]


@pytest.mark.parametrize("policy, resource_type, path, value, expected", CASES)
def test_each_violation_is_caught_with_a_message_naming_the_field(policy, resource_type, path, value, expected):
    assert_caught(policy, resource_type, path, value, expected)


def test_a_config_lowers_the_cap():
    assert violations("dynamic-role-ttls", common.ROLE, ROLE, {"maxTtlCapSeconds": 3600})


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


def test_what_our_own_components_declare_passes_the_rules_that_read_meaning():
    """CockroachDB's revocation SQL, the superuser names a stack may widen."""
    from components import cockroach_sql

    cockroach = changed(ROLE, "revocationStatements", cockroach_sql.revocation_statements("dbcreds_group_app"))
    assert violations("dynamic-role-revocation", common.ROLE, cockroach) == []
    named = changed(CONNECTION, "postgresql.username", "platform_super")
    assert violations("database-connection-not-superuser", common.CONNECTION, named) == []
    assert violations("database-connection-not-superuser", common.CONNECTION, named,
                      {"superuserNames": ["platform_super"]})


def test_a_teams_connection_serves_its_own_roles_by_glob_and_no_one_elses():
    """A team's connection (its user the team's, which makes users only through its functions) may
    serve `<team>` and `<team>-*`; any other glob, or the glob on another connection, is caught."""
    from tests.unit.policy import CONNECTION

    team = {**CONNECTION, "allowedRoles": ["reports", "reports-*"],
            "postgresql": {**CONNECTION["postgresql"], "username": "dbcreds_team_reports_vault"}}
    assert violations("database-connection-allowed-roles", common.CONNECTION, team) == []
    for roles, user in ((["reports", "*"], "dbcreds_team_reports_vault"),
                        (["reports", "other-*"], "dbcreds_team_reports_vault"),
                        (["reports", "reports-*"], "dbcreds_admin")):
        found = violations("database-connection-allowed-roles", common.CONNECTION, {
            **team, "allowedRoles": roles, "postgresql": {**team["postgresql"], "username": user}})
        assert found and "wildcard" in found[0], (roles, user)


def test_no_static_role_takes_over_an_admin_the_connection_logs_in_as_or_the_superuser():
    connection = resource(common.CONNECTION, "conn", CONNECTION)

    def found(username: str, config: dict | None = None) -> list[str]:
        static = resource(common.STATIC_ROLE, "svc", {**STATIC_ROLE, "username": username})
        return stack_violations("static-role-not-admin", [connection, static], config)

    assert found("svc") == []
    # The connection's own admin (tests/unit/policy.py's CONNECTION logs in as dbcreds_admin).
    assert "its user 'dbcreds_admin' is a connection logs in as" in found("dbcreds_admin")[0]
    assert "is an admin or superuser" in found("postgres")[0]
    assert "is an admin or superuser" in found("platform_admin", {"adminRoles": ["platform_admin"]})[0]
