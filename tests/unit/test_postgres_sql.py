"""The generated PostgreSQL statements, as text (tests/integration runs them for real)."""

import re

import pytest

from components.grants import GrantSpec
from components.postgres_sql import (
    DYNAMIC_USERS_QUERY,
    admin_role_statements,
    bootstrap_admin_statements,
    EXPIRED_GRACE_SECONDS,
    MAX_IDENTIFIER_BYTES,
    create_group_role,
    creation_statements,
    drop_dynamic_user_statements,
    expired_dynamic_users_query,
    grant_statements,
    group_role_name,
    max_username_bytes,
    revocation_statements,
    revoke_statements,
    schemas_of,
    statement_text_unlogged,
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


def test_revocation_ends_sessions_cleans_up_only_what_it_must_and_drops_the_role():
    (block,) = revocation_statements()
    steps = [s.strip() for s in block.removeprefix("DO $$ BEGIN ").removesuffix(" END $$").split(";") if s.strip()]
    assert steps[0] == "PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}'"
    assert steps[1].startswith("IF EXISTS (SELECT FROM pg_shdepend")
    assert steps[3] == "EXECUTE format('DROP OWNED BY %I', '{{name}}')" and steps[4] == "END IF"
    assert steps[-1] == "EXECUTE format('DROP ROLE IF EXISTS %I', '{{name}}')"


def test_username_template_is_unique_per_issuance_and_fits():
    template = username_template()
    assert "(random 20)" in template and "(unix_time)" in template
    assert "truncate 16" in template
    assert max_username_bytes() == 1 + 16 + 20 + 10 + 3
    assert max_username_bytes() <= MAX_IDENTIFIER_BYTES


def test_the_role_is_read_back_from_a_rendered_username():
    from components.postgres_sql import role_of_username

    assert role_of_username("v_app_rw_k3j9x0q2m5n8b1v4c7z6_1796220562") == "app_rw"
    assert role_of_username("v_abcdefghijklmnop_k3j9x0q2m5n8b1v4c7z6_1796220562") == "abcdefghijklmnop"
    # Not the template's: a service user, a random part of the wrong length, upper case.
    for name in ("v_svc", "v_app_short_1796220562", "v_app_K3J9X0Q2M5N8B1V4C7Z6_1796220562", "svc_reporting"):
        assert role_of_username(name) is None


def test_dynamic_users_holding_more_than_their_group_are_named():
    from components.postgres_sql import dynamic_user_excess

    groups = {"app-rw": "dbcreds_app_rw", "reader": "dbcreds_reader"}
    clean = ("v_reader_aaaaaaaaaaaaaaaaaaaa_1", [], ["dbcreds_reader"], [])
    widened = ("v_app_rw_bbbbbbbbbbbbbbbbbbbb_2", [], ["dbcreds_app_rw"], ["DELETE ON TABLE public.users"])
    promoted = ("v_reader_cccccccccccccccccccc_3", ["CREATEROLE"], ["dbcreds_reader", "pg_read_all_data"], [])
    orphan = ("v_reader_dddddddddddddddddddd_4", [], [], [])
    foreign = ("v_other_eeeeeeeeeeeeeeeeeeee_5", ["SUPERUSER"], [], [])  # another stack's role
    assert dynamic_user_excess([clean, widened, promoted, orphan, foreign], groups) == [
        "v_app_rw_bbbbbbbbbbbbbbbbbbbb_2 of role app-rw holds beyond its grants: DELETE ON TABLE public.users",
        "v_reader_cccccccccccccccccccc_3 of role reader holds beyond its grants: CREATEROLE, membership of "
        "pg_read_all_data",
        "v_reader_dddddddddddddddddddd_4 of role reader holds beyond its grants: no membership of its group "
        "dbcreds_reader",
    ]
    assert dynamic_user_excess([clean], groups) == []


def test_bootstrap_sql_makes_each_service_user_with_a_random_password_in_its_group():
    from components.postgres_sql import bootstrap_sql
    from components.grants import validate_grant_spec

    spec = validate_grant_spec("reader", {"privileges": ["SELECT"], "schemas": ["public"]}, 86400)
    text = bootstrap_sql("dbcreds_admin", "app", (spec,), "dbcreds_group", (("svc_reporting", "reader"),))
    lines = text.splitlines()
    made = lines.index('CREATE ROLE "svc_reporting" WITH LOGIN PASSWORD :\'service_password\' '
                       'CONNECTION LIMIT 10 IN ROLE "dbcreds_group_reader";')
    # The password comes from the server's strong random source, into a psql variable: never in the file.
    assert lines[made - 1] == "SELECT gen_random_uuid()::text || gen_random_uuid()::text AS service_password \\gset"
    # Made as the admin (who manages it from then on), after its group.
    assert lines.index('SET ROLE "dbcreds_admin";') < lines.index(
        'DO $$ BEGIN CREATE ROLE "dbcreds_group_reader" NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;'
    ) < made < lines.index("RESET ROLE;")


def test_expired_dynamic_users_are_those_past_valid_until_by_more_than_the_grace():
    assert expired_dynamic_users_query(30) == (
        "SELECT rolname FROM pg_roles WHERE rolname LIKE 'v\\_%' "
        "AND rolvaliduntil < now() - INTERVAL '30 seconds' ORDER BY rolname")
    assert expired_dynamic_users_query().startswith(DYNAMIC_USERS_QUERY + " AND ")
    assert f"INTERVAL '{EXPIRED_GRACE_SECONDS} seconds'" in expired_dynamic_users_query()
    assert "INTERVAL '0 seconds'" in expired_dynamic_users_query(0)


def test_the_expired_query_takes_only_a_whole_number_of_seconds():
    for wrong in (-1, 1.5, "30", "30 seconds'; DROP ROLE x; --", True):
        with pytest.raises(ValueError, match="grace_seconds"):
            expired_dynamic_users_query(wrong)


def test_expired_users_are_dropped_with_vaults_revocation_sql_and_only_dynamic_names_pass():
    name = "v_reader_abcdefghij0123456789_1700000000"
    assert drop_dynamic_user_statements([name]) == [s.replace("{{name}}", name) for s in revocation_statements()]
    for wrong in ("svc_reporting", "v_x'; DROP ROLE admin; --", "V_READER_X"):
        with pytest.raises(ValueError, match="no dynamic user"):
            drop_dynamic_user_statements([wrong])


def test_a_teams_names_and_its_users_pattern():
    from components.postgres_sql import TeamDatabaseNames

    names = TeamDatabaseNames("reports")
    assert (names.group, names.user, names.schema) == (
        "dbcreds_team_reports", "dbcreds_team_reports_vault", "dbcreds_team_reports")
    pattern = re.compile(names.username_pattern)
    # What the username template renders for the team's roles, and nothing of another team's or the platform's.
    assert pattern.match("v_reports_abcdefghij0123456789_1765000000")
    assert pattern.match("v_reports_daily_abcdefghij0123456789_1765000000")
    for other in ("v_reportsx_abc_1", "v_reader_abc_1", "dbcreds_admin", "v_reports_"):
        assert not pattern.match(other), other
    for bad in ("team-a", "Reports", "a" * 13, 'x"; DROP'):
        with pytest.raises(ValueError, match="team names"):
            TeamDatabaseNames(bad)


def test_the_team_user_may_connect_and_nothing_more():
    from components.postgres_sql import TeamDatabaseNames, as_text, team_user_statements

    create, connect = [as_text(s) for s in team_user_statements(TeamDatabaseNames("reports"), "app")]
    assert create.startswith('CREATE ROLE "dbcreds_team_reports_vault" WITH LOGIN NOSUPERUSER NOCREATEROLE ')
    assert "CREATEROLE" not in create.replace("NOCREATEROLE", "") and "IN ROLE" not in create
    assert connect == 'GRANT CONNECT ON DATABASE "app" TO "dbcreds_team_reports_vault"'


def test_the_team_functions_are_security_definer_closed_to_public_and_bounded():
    from components.postgres_sql import TeamDatabaseNames, team_function_statements

    statements = team_function_statements(TeamDatabaseNames("reports"), 3600, connection_limit=5)
    functions = [s for s in statements if s.startswith("CREATE OR REPLACE FUNCTION")]
    assert [re.search(r'"\."(\w+)"', f).group(1) for f in functions] == ["create_user", "renew_user", "drop_user"]
    for function in functions:
        assert "SECURITY DEFINER SET search_path = pg_catalog, pg_temp" in function
        # Only the team's users, by name.
        assert "IF user_name !~ '^v_reports_[a-z0-9_]+$'" in function
        # Identifiers and values reach the dynamic statements through format's %I and %L only.
        for line in function.splitlines():
            if "EXECUTE format(" in line:
                assert "||" not in line
        signature = function.split(" RETURNS")[0].removeprefix("CREATE OR REPLACE FUNCTION ")
        assert f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC" in statements
        assert f'GRANT EXECUTE ON FUNCTION {signature} TO "dbcreds_team_reports_vault"' in statements
    create, renew, drop = functions
    # The user joins the team's group, with the platform's connection limit, within the team's cap (+ slack).
    assert "CONNECTION LIMIT 5 IN ROLE %I" in create and "'dbcreds_team_reports');" in create
    assert "make_interval(secs => 3900)" in create and "make_interval(secs => 3900)" in renew
    # Renewing or dropping a user outside the team's group is refused; dropping one gone is a no-op.
    for function in (renew, drop):
        assert "WHERE g.rolname = 'dbcreds_team_reports' AND u.rolname = user_name" in function
    assert drop.index("IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = user_name) THEN\n    RETURN;") < drop.index(
        "g.rolname = 'dbcreds_team_reports'")
    assert statements[:3] == ['CREATE SCHEMA IF NOT EXISTS "dbcreds_team_reports"',
                              'REVOKE ALL ON SCHEMA "dbcreds_team_reports" FROM PUBLIC',
                              'GRANT USAGE ON SCHEMA "dbcreds_team_reports" TO "dbcreds_team_reports_vault"']
    for bad in (0, -1, True, "1h"):
        with pytest.raises(ValueError, match="max_ttl"):
            team_function_statements(TeamDatabaseNames("reports"), bad)


def test_a_teams_vault_statements_call_its_functions():
    from components.postgres_sql import (TeamDatabaseNames, team_creation_statements, team_renew_statements,
                                         team_revocation_statements)

    names = TeamDatabaseNames("reports")
    assert team_creation_statements(names) == [
        """SELECT "dbcreds_team_reports"."create_user"('{{name}}', '{{password}}', '{{expiration}}')"""]
    assert team_renew_statements(names) == ["""SELECT "dbcreds_team_reports"."renew_user"('{{name}}', '{{expiration}}')"""]
    assert team_revocation_statements(names) == ["""SELECT "dbcreds_team_reports"."drop_user"('{{name}}')"""]


def test_a_teams_access_is_dropped_with_its_user():
    from components.postgres_sql import TeamDatabaseNames, team_drop_statements

    statements = team_drop_statements(TeamDatabaseNames("reports"), "app")
    assert statements[1:] == [
        'DROP SCHEMA IF EXISTS "dbcreds_team_reports" CASCADE',
        """DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'dbcreds_team_reports_vault') THEN """
        """EXECUTE 'REVOKE ALL ON DATABASE "app" FROM "dbcreds_team_reports_vault"'; END IF; END $$""",
        'DROP ROLE IF EXISTS "dbcreds_team_reports_vault"']
    assert "pg_terminate_backend" in statements[0]


def test_database_counters_are_named_and_a_reading_without_its_own_session_or_user_is_wrong():
    from components.postgres_sql import database_counters

    problem, counters = database_counters((3, 200, 2, 10, 1, 0))
    assert problem == "" and counters == {"connections": 3, "max_connections": 200, "dynamic_users": 2,
                                          "commits": 10, "rollbacks": 1, "deadlocks": 0}
    problem, _ = database_counters((0, 200, 0, 1, 1, 0))
    assert "connections is 0" in problem and "dynamic_users is 0" in problem
    assert "over max_connections 200" in database_counters((201, 200, 1, 1, 0, 0))[0]


def test_the_admin_vault_connects_as_logs_no_statement_text_when_a_superuser_makes_it():
    unlogged = [s.as_string(None) for s in statement_text_unlogged('a"dmin')]
    assert unlogged == ['ALTER ROLE "a""dmin" SET "log_min_error_statement" = \'panic\'',
                        'ALTER ROLE "a""dmin" SET "log_statement" = \'none\'',
                        'ALTER ROLE "a""dmin" SET "log_min_duration_statement" = \'-1\'']
    assert [s for s in unlogged if s in {x.as_string(None) for x in bootstrap_admin_statements('a"dmin', "app")}] == \
        unlogged
    as_superuser = {s.as_string(None) for s in admin_role_statements('a"dmin', "app")}
    assert set(unlogged) <= as_superuser
    # Another admin (an external server's stack admin) may not set these: the statements would fail.
    assert not set(unlogged) & {s.as_string(None) for s in admin_role_statements('a"dmin', "app", superuser=False)}
