"""The generated CockroachDB statements, as text.

No CockroachDB binary is reachable here: these statements have not run on a
real cluster (tests/integration/test_cockroach_live.py runs them where
`cockroach` is on PATH, and is reported as skipped otherwise).
"""

import pytest

from components.cockroach_sql import (
    bootstrap_admin_statements,
    create_group_role,
    creation_statements,
    grant_statements,
    revocation_statements,
    revoke_statements,
)
from components.grants import GrantSpec
from components.sql_dialects import COCKROACHDB, POSTGRESQL, dialect_named
from policies.rules import database_engine as rules

READER = GrantSpec(name="reader", privileges=("SELECT",), schemas=("public",))
APP = GrantSpec(name="app", privileges=("SELECT", "INSERT"), tables=("public.users", "shop.orders"))


def test_group_role_is_created_once():
    assert create_group_role("dbcreds_group_reader") == 'CREATE ROLE IF NOT EXISTS "dbcreds_group_reader"'


def test_schema_and_table_grants():
    assert grant_statements(READER, "g", "app") == [
        'GRANT CONNECT ON DATABASE "app" TO "g"',
        'GRANT USAGE ON SCHEMA "public" TO "g"',
        'GRANT SELECT ON ALL TABLES IN SCHEMA "public" TO "g"',
        'ALTER DEFAULT PRIVILEGES IN SCHEMA "public" GRANT SELECT ON TABLES TO "g"',
    ]
    assert grant_statements(APP, "g", "app")[-2:] == [
        'GRANT SELECT, INSERT ON TABLE "public"."users" TO "g"',
        'GRANT SELECT, INSERT ON TABLE "shop"."orders" TO "g"',
    ]


def test_revoke_covers_every_schema_given():
    statements = revoke_statements(["shop", "public"], "g", "app")
    assert statements[0] == 'REVOKE ALL ON ALL TABLES IN SCHEMA "public" FROM "g"'
    assert 'REVOKE USAGE ON SCHEMA "shop" FROM "g"' in statements
    assert statements[-1] == 'REVOKE CONNECT ON DATABASE "app" FROM "g"'


def test_creation_is_two_statements_a_user_and_its_membership():
    """Few statements per issuance: each role change is a schema change in CockroachDB."""
    assert creation_statements("dbcreds_group_app") == [
        "CREATE USER \"{{name}}\" WITH PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'",
        'GRANT "dbcreds_group_app" TO "{{name}}"',
    ]


def test_revocation_revokes_before_dropping():
    statements = revocation_statements("dbcreds_group_app")
    assert statements[0].startswith("CANCEL SESSIONS IF EXISTS (SELECT session_id FROM [SHOW CLUSTER SESSIONS]")
    assert statements[1:] == [
        'REVOKE "dbcreds_group_app" FROM "{{name}}"',
        'DROP OWNED BY "{{name}}"',
        'DROP USER IF EXISTS "{{name}}"',
    ]


def test_group_names_are_quoted_identifiers():
    assert creation_statements('odd"name')[1] == 'GRANT "odd""name" TO "{{name}}"'


def test_bootstrap_lets_memberships_change_during_transactions():
    statements = [s.as_string(None) for s in bootstrap_admin_statements("dbcreds_admin", "app")]
    assert statements[0] == 'CREATE USER IF NOT EXISTS "dbcreds_admin" WITH LOGIN CREATEROLE CANCELQUERY VIEWACTIVITY'
    assert "ALTER ROLE ALL SET allow_role_memberships_to_change_during_transaction = true" in statements
    assert not any("PASSWORD" in s for s in statements)


def test_dialects_are_found_by_name_and_own_their_statements():
    assert dialect_named("cockroachdb") is COCKROACHDB and dialect_named("postgresql") is POSTGRESQL
    spec = GrantSpec(name="app", privileges=("SELECT",), schemas=("public",), connection_limit=3)
    assert COCKROACHDB.creation_statements(spec, "g") == creation_statements("g")
    assert COCKROACHDB.revocation_statements("g") == revocation_statements("g")
    assert POSTGRESQL.creation_statements(spec, "g")[0].startswith('CREATE ROLE "{{name}}" WITH LOGIN')
    assert 'CONNECTION LIMIT 3 IN ROLE "g"' in POSTGRESQL.creation_statements(spec, "g")[0]
    # PostgreSQL's DROP ROLE ends the membership: no REVOKE, and the group is not named.
    assert "REVOKE" not in " ".join(POSTGRESQL.revocation_statements("g"))
    assert POSTGRESQL.revocation_statements("g") == POSTGRESQL.revocation_statements("other")
    # Only PostgreSQL is sent a SCRAM verifier by the plugin.
    assert (POSTGRESQL.password_authentication, COCKROACHDB.password_authentication) == ("scram-sha-256", None)
    # A group role's grants too: an inserting spec's group gets PostgreSQL's sequences; CockroachDB has none.
    inserts = GrantSpec(name="app", privileges=("INSERT",), schemas=("public",))
    assert any("SEQUENCES" in s for s in POSTGRESQL.grant_statements(inserts, "g", "app"))
    assert not any("SEQUENCES" in s for s in COCKROACHDB.grant_statements(inserts, "g", "app"))


def test_an_unknown_dialect_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="no SQL dialect 'mysql': one of postgresql, cockroachdb"):
        dialect_named("mysql")


def test_cockroachdb_role_passes_the_policy_rules():
    role = {"creationStatements": creation_statements("dbcreds_group_app"),
            "revocationStatements": revocation_statements("dbcreds_group_app"),
            "defaultTtl": 3600, "maxTtl": 7200}
    config = {"maxTtlCapSeconds": 86400, "adminRoles": ["dbcreds_admin"]}
    problems = []
    for rule in (rules.role_valid_until, rules.role_least_privilege, rules.role_revocation, rules.role_ttls):
        rule(role, config, problems.append)
    assert problems == []
    # And the walkthroughs' GRANT ALL on the whole database is caught.
    seed = {**role, "creationStatements": ['GRANT ALL ON DATABASE defaultdb TO "{{name}}"']}
    rules.role_least_privilege(seed, config, problems.append)
    assert problems and "ALL" in problems[0]
