"""The generated PostgreSQL statements, as text (tests/integration runs them for real)."""

import re

from components.grants import GrantSpec
from components.postgres_sql import (
    MAX_IDENTIFIER_BYTES,
    create_group_role,
    creation_statements,
    grant_statements,
    group_role_name,
    max_username_bytes,
    revocation_statements,
    revoke_statements,
    schemas_of,
    username_template,
)

READER = GrantSpec(name="reader", privileges=("SELECT",), schemas=("public",))
APP = GrantSpec(name="app-rw", privileges=("SELECT", "INSERT", "UPDATE"), tables=("public.users", "shop.orders"))


def test_group_role_names():
    assert group_role_name("dbcreds", READER) == "dbcreds_reader"
    assert group_role_name("dbcreds", APP) == "dbcreds_app_rw"


def test_create_group_role_is_idempotent_sql():
    assert create_group_role("dbcreds_reader") == (
        'DO $$ BEGIN CREATE ROLE "dbcreds_reader" NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$'
    )


def test_schema_grants_cover_future_tables():
    assert grant_statements(READER, "g", "app") == [
        'GRANT CONNECT ON DATABASE "app" TO "g"',
        'GRANT USAGE ON SCHEMA "public" TO "g"',
        'GRANT SELECT ON ALL TABLES IN SCHEMA "public" TO "g"',
        'ALTER DEFAULT PRIVILEGES IN SCHEMA "public" GRANT SELECT ON TABLES TO "g"',
    ]


def test_table_grants_with_insert_reach_sequences():
    assert grant_statements(APP, "g", "app") == [
        'GRANT CONNECT ON DATABASE "app" TO "g"',
        'GRANT USAGE ON SCHEMA "public" TO "g"',
        'GRANT USAGE ON SCHEMA "shop" TO "g"',
        'GRANT SELECT, INSERT, UPDATE ON TABLE "public"."users" TO "g"',
        'GRANT SELECT, INSERT, UPDATE ON TABLE "shop"."orders" TO "g"',
        'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "public" TO "g"',
        'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "shop" TO "g"',
    ]


def test_identifiers_are_quoted():
    assert grant_statements(READER, 'we"ird', "d b")[0] == 'GRANT CONNECT ON DATABASE "d b" TO "we""ird"'


def test_revoke_covers_what_grant_gives():
    assert schemas_of(APP) == ["public", "shop"]
    statements = revoke_statements(schemas_of(APP), "g", "app")
    assert statements[:4] == [
        'REVOKE ALL ON ALL TABLES IN SCHEMA "public" FROM "g"',
        'REVOKE ALL ON ALL SEQUENCES IN SCHEMA "public" FROM "g"',
        'ALTER DEFAULT PRIVILEGES IN SCHEMA "public" REVOKE ALL ON TABLES FROM "g"',
        'REVOKE USAGE ON SCHEMA "public" FROM "g"',
    ]
    assert statements[-1] == 'REVOKE CONNECT ON DATABASE "app" FROM "g"'


def test_creation_joins_the_group_and_expires():
    (statement,) = creation_statements("dbcreds_reader")
    assert statement == (
        "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' "
        'CONNECTION LIMIT 10 IN ROLE "dbcreds_reader"'
    )
    assert not re.search(r"GRANT|SUPERUSER|CREATEROLE|CREATEDB|BYPASSRLS|REPLICATION", statement)


def test_revocation_ends_sessions_and_drops_the_role():
    statements = revocation_statements()
    assert "pg_terminate_backend" in statements[0] and "'{{name}}'" in statements[0]
    assert statements[-1] == 'DROP ROLE IF EXISTS "{{name}}"'


def test_username_template_is_unique_per_issuance_and_fits():
    template = username_template()
    assert "(random 20)" in template and "(unix_time)" in template
    assert "truncate 16" in template
    assert max_username_bytes() == 1 + 16 + 20 + 10 + 3
    assert max_username_bytes() <= MAX_IDENTIFIER_BYTES
