"""The generated SQL on a real PostgreSQL server, run as the non-superuser admin, as Vault runs it.

Vault's database plugin fills {{name}}, {{password}} and {{expiration}} and runs
the statements over its admin connection; these tests do the same, so what the
dynamic roles can do, and that revocation leaves nothing behind, is proved on
the server itself.
"""

import concurrent.futures
import datetime
import re
import secrets

import psycopg
import pytest
from psycopg import errors

from components.grants import GrantSpec
from components.postgres_sql import (
    MAX_IDENTIFIER_BYTES,
    EXPIRED_GRACE_SECONDS,
    creation_statements,
    expired_dynamic_users_query,
    grant_statements,
    group_role_name,
    max_username_bytes,
    revocation_statements,
    revoke_statements,
    schemas_of,
    username_template,
)
from components.sql_dialects import POSTGRESQL
from components.vault.secrets_engine import MAX_OPEN_CONNECTIONS, connection_url
from tests.support.openbao_dev import dev_openbao
from tests.support.postgres import create_groups, running_postgres

READER = GrantSpec(name="reader", privileges=("SELECT",), schemas=("public",))
APP = GrantSpec(
    name="app", privileges=("SELECT", "INSERT", "UPDATE", "DELETE"), tables=("public.users", "public.orders")
)
#: A role name of the longest length allowed (16), with a hyphen: the longest username the template renders.
LONGEST = GrantSpec(name="quarterly-report", privileges=("SELECT",), tables=("public.users",))
#: The rows components.postgres_sql.DEMO_SCHEMA seeds into public.users (Ada, Alan, Grace); the tests
#: that add rows delete them again.
SEEDED_USERS = 3


@pytest.fixture(scope="module")
def db():
    with running_postgres() as database:
        create_groups(database, (READER, APP), "dbcreds")
        yield database


def fill(statement: str, name: str, password: str = "", expiration: str = "") -> str:
    return statement.replace("{{name}}", name).replace("{{password}}", password).replace("{{expiration}}", expiration)


def issue(db, spec: GrantSpec, ttl: datetime.timedelta = datetime.timedelta(hours=1)) -> tuple[str, str]:
    """What Vault does on a creds read: a new name and password, the creation SQL as the admin. (The
    name is this helper's, in the template's shape; the one OpenBao renders from the template is
    tested in test_the_username_openbao_renders_from_the_template_fits_and_is_kept_whole.)"""
    name = f"v_{spec.name}_{secrets.token_hex(10)}_{int(datetime.datetime.now().timestamp())}"
    password = secrets.token_urlsafe(24)
    expiration = (datetime.datetime.now(datetime.timezone.utc) + ttl).strftime("%Y-%m-%d %H:%M:%S%z")
    with db.as_admin() as conn:
        for statement in creation_statements(group_role_name("dbcreds", spec)):
            conn.execute(fill(statement, name, password, expiration))
    return name, password


def revoke(db, name: str) -> None:
    """What Vault does when a lease ends."""
    with db.as_admin() as conn:
        for statement in revocation_statements():
            conn.execute(fill(statement, name))


def role_exists(db, name: str) -> bool:
    with db.as_admin() as conn:
        return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is not None


def test_reader_selects_and_cannot_write(db):
    name, password = issue(db, READER)
    with db.connect(name, password, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == SEEDED_USERS
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]
        for forbidden in (
            "INSERT INTO users (name, email) VALUES ('x', 'x@example.com')",
            "DELETE FROM users",
            "CREATE TABLE public.evil (id int)",
            "CREATE ROLE evil",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(forbidden)
    revoke(db, name)


def test_app_writes_its_tables_through_identity_columns(db):
    name, password = issue(db, APP)
    with db.connect(name, password, autocommit=True) as conn:
        user_id = conn.execute(
            "INSERT INTO users (name, email) VALUES (%s, %s) RETURNING id", ("App", f"{name}@example.com")
        ).fetchone()[0]
        conn.execute("INSERT INTO orders (user_id, item) VALUES (%s, 'book')", (user_id,))
        conn.execute("UPDATE orders SET item = 'pen' WHERE user_id = %s", (user_id,))
        conn.execute("DELETE FROM orders WHERE user_id = %s", (user_id,))
        conn.execute("DELETE FROM users WHERE id = %s", (user_id,))
        for forbidden, refusal in (("TRUNCATE orders", "permission denied for table orders"),
                                   ("CREATE TABLE public.evil (id int)", "permission denied for schema public"),
                                   ("ALTER TABLE users ADD COLUMN x int", "must be owner of table users")):
            with pytest.raises(errors.InsufficientPrivilege) as refused:
                conn.execute(forbidden)
            assert refused.value.diag.message_primary == refusal
    revoke(db, name)


def test_revocation_ends_sessions_and_drops_the_role(db):
    name, password = issue(db, READER)
    session = db.connect(name, password, autocommit=True)
    session.execute("SELECT 1")
    revoke(db, name)
    assert not role_exists(db, name)
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        db.connect(name, password)
    # Revoking again (Vault retries) is harmless.
    revoke(db, name)


def test_revocation_takes_over_what_a_user_was_given_or_owns(db):
    """A user given a privilege and an object by hand: the cleanup branch runs, and the role goes."""
    name, _ = issue(db, READER)
    with db.as_superuser(db.database) as conn:
        conn.execute(f'GRANT DELETE ON users TO "{name}"')
        conn.execute('CREATE TABLE public.owned_by_user (id int)')
        conn.execute(f'ALTER TABLE public.owned_by_user OWNER TO "{name}"')
    revoke(db, name)
    assert not role_exists(db, name)
    with db.as_admin() as conn:
        # What it owned is taken over by the admin (REASSIGN OWNED); nothing names the role any more.
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'owned_by_user'").fetchone()[0]
        assert owner == "dbcreds_admin"
        conn.execute("DROP TABLE public.owned_by_user")
        assert conn.execute("SELECT count(*) FROM pg_shdepend d WHERE d.refclassid = 'pg_authid'::regclass "
                            "AND NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = d.refobjid)").fetchone()[0] == 0


def test_an_expired_user_cannot_log_in(db):
    name, password = issue(db, READER, ttl=datetime.timedelta(seconds=-1))
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        db.connect(name, password)
    revoke(db, name)


def test_only_users_past_valid_until_and_the_grace_are_expired(db):
    past = issue(db, READER, ttl=datetime.timedelta(seconds=-(EXPIRED_GRACE_SECONDS + 60)))[0]
    within_grace = issue(db, READER, ttl=datetime.timedelta(seconds=-5))[0]
    live = issue(db, APP)[0]
    with db.as_admin() as conn:
        conn.execute("CREATE ROLE v_no_valid_until LOGIN")
        expired = [row[0] for row in conn.execute(expired_dynamic_users_query())]
    try:
        assert past in expired
        assert not {within_grace, live, "v_no_valid_until"} & set(expired)
    finally:
        for name in (past, within_grace, live, "v_no_valid_until"):
            revoke(db, name)


def test_a_burst_of_issuances_never_collides(db):
    # 20 at once, as right after an unseal: creation only joins a group, so no GRANT races.
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        issued = list(pool.map(lambda _: issue(db, APP), range(20)))
    assert len({name for name, _ in issued}) == 20
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(lambda creds: revoke(db, creds[0]), issued))
    with db.as_admin() as conn:
        left = conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v\\_%'").fetchone()[0]
    assert left == 0


def test_a_narrowed_spec_takes_privileges_from_users_already_issued(db):
    name, password = issue(db, APP)
    narrowed = GrantSpec(name="app", privileges=("SELECT",), tables=("public.users",))
    group = group_role_name("dbcreds", APP)
    with db.as_admin() as conn:
        for statement in revoke_statements(schemas_of(APP), group, db.database):
            conn.execute(statement)
        for statement in grant_statements(narrowed, group, db.database):
            conn.execute(statement)
    try:
        with db.connect(name, password, autocommit=True) as conn:
            conn.execute("SELECT count(*) FROM users")
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute("SELECT count(*) FROM orders")
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute("INSERT INTO users (name, email) VALUES ('n', 'n@example.com')")
    finally:
        with db.as_admin() as conn:
            for statement in revoke_statements(schemas_of(APP), group, db.database):
                conn.execute(statement)
            for statement in grant_statements(APP, group, db.database):
                conn.execute(statement)
        revoke(db, name)


def test_what_a_user_owns_is_taken_over_before_its_role_is_dropped(db):
    name, password = issue(db, READER)
    with db.as_admin() as conn:
        conn.execute(f'GRANT CREATE ON SCHEMA public TO "{name}"')
    with db.connect(name, password, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.left_behind (id int)")
    revoke(db, name)
    assert not role_exists(db, name)
    with db.as_admin() as conn:
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'left_behind'").fetchone()[0]
        conn.execute("DROP TABLE public.left_behind")
    assert owner == db.admin


def test_the_username_openbao_renders_from_the_template_fits_and_is_kept_whole(db, tmp_path):
    """OpenBao's database engine, configured as the product configures it (the connection's URL and
    username_template, the dialect's creation and revocation SQL), issues for a role of the longest name:
    the name it renders is exactly max_username_bytes() long, within PostgreSQL's limit, and the role is
    made under that whole name (PostgreSQL truncates a longer one), logs in, and goes at revocation."""
    group = group_role_name("dbcreds", LONGEST)
    create_groups(db, (LONGEST,), "dbcreds")
    with dev_openbao(tmp_path) as vault:
        vault.sys.enable_secrets_engine("database", path="database")
        vault.write("database/config/app", plugin_name="postgresql-database-plugin",
                    connection_url=connection_url("127.0.0.1", db.server.port, db.database, str(db.ca_file)),
                    username=db.admin, password=db.admin_password, allowed_roles=[LONGEST.name],
                    username_template=username_template(), max_open_connections=MAX_OPEN_CONNECTIONS,
                    password_authentication=POSTGRESQL.password_authentication, verify_connection=True)
        vault.write(f"database/roles/{LONGEST.name}", db_name="app",
                    creation_statements=POSTGRESQL.creation_statements(LONGEST, group),
                    revocation_statements=POSTGRESQL.revocation_statements(group), default_ttl=300, max_ttl=600)
        secret = vault.read(f"database/creds/{LONGEST.name}")
        name, password = secret["data"]["username"], secret["data"]["password"]
        try:
            # v _ <role, hyphens as underscores> _ <20 random> _ <unix time, 10 digits until 2286>
            assert re.fullmatch(r"v_quarterly_report_[a-z0-9]{20}_[0-9]{10}", name), name
            assert len(name.encode()) == max_username_bytes() == 50 <= MAX_IDENTIFIER_BYTES
            assert role_exists(db, name)
            with db.connect(name, password, autocommit=True) as conn:
                assert conn.execute("SELECT current_user").fetchone()[0] == name
                assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == SEEDED_USERS
        finally:
            vault.sys.revoke_lease(lease_id=secret["lease_id"])
        assert not role_exists(db, name)


def test_a_teams_user_makes_renews_and_drops_only_its_own_users_through_its_functions(db):
    """The team's connection user (no CREATEROLE) makes users only through the admin's functions: in its
    group, named v_<team>_..., within its cap; it cannot create a role or alter the admin directly,
    nor renew or drop a user that is not its team's."""
    from psycopg import sql

    from components.postgres_sql import (TeamDatabaseNames, as_text, set_password, team_creation_statements,
                                         team_drop_statements, team_function_statements, team_renew_statements,
                                         team_revocation_statements, team_user_statements)

    names = TeamDatabaseNames("reports")
    orders = GrantSpec(name="reports", privileges=("SELECT",), tables=("public.orders",))
    user_password = secrets.token_urlsafe(24)
    with db.as_admin() as conn:
        conn.execute(POSTGRESQL.create_group_role(names.group))
        for statement in grant_statements(orders, names.group, db.database):
            conn.execute(statement)
    with db.as_superuser(db.database) as conn:
        for statement in team_user_statements(names, db.database):
            conn.execute(statement)
        conn.execute(set_password(names.user, user_password))
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(db.admin)))
            for statement in team_function_statements(names, 3600):
                conn.execute(statement)

    def as_team(statements, name, password="", ttl=datetime.timedelta(minutes=30)):
        expiration = (datetime.datetime.now(datetime.timezone.utc) + ttl).strftime("%Y-%m-%d %H:%M:%S%z")
        with db.connect(names.user, user_password, autocommit=True) as conn:
            for statement in statements:
                conn.execute(fill(statement, name, password, expiration))

    try:
        with db.connect(names.user, user_password, autocommit=True) as conn:
            for direct in ("CREATE ROLE v_reports_direct LOGIN", f'ALTER ROLE "{db.admin}" PASSWORD \'taken\'',
                           f'ALTER ROLE "{db.admin}" VALID UNTIL \'2000-01-01\'', f'GRANT "{db.admin}" TO "{names.user}"'):
                with pytest.raises(errors.InsufficientPrivilege):
                    conn.execute(direct)
        name, password = f"v_reports_{secrets.token_hex(10)}_1", secrets.token_urlsafe(24)
        as_team(team_creation_statements(names), name, password)
        with db.connect(name, password, autocommit=True) as conn:
            conn.execute("SELECT count(*) FROM public.orders")
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute("SELECT count(*) FROM public.users")
        with db.as_admin() as conn:
            member_of = conn.execute("SELECT array_agg(g.rolname) FROM pg_auth_members m JOIN pg_roles g ON "
                                     "g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s",
                                     (name,)).fetchone()[0]
        assert member_of == [names.group]
        as_team(team_renew_statements(names), name)
        # Beyond the team's cap (1 h + slack), or a name that is not the team's: refused.
        with pytest.raises(errors.InsufficientPrivilege, match="beyond team reports's cap"):
            as_team(team_renew_statements(names), name, ttl=datetime.timedelta(hours=2))
        for other in (db.admin, "v_reader_x", "v_reportsx_abc"):
            with pytest.raises(errors.InsufficientPrivilege, match="is no user of team reports"):
                as_team(team_creation_statements(names), other, "p")
        # A user of the platform's roles (another group) is not the team's to renew or drop.
        platform_user, _ = issue(db, READER)
        team_like = f"v_reports_{secrets.token_hex(10)}_2"
        with db.as_admin() as conn:
            conn.execute(as_text(sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(
                sql.Identifier(team_like), sql.Identifier(group_role_name("dbcreds", READER)))))
        for statements in (team_renew_statements(names), team_revocation_statements(names)):
            with pytest.raises(errors.InsufficientPrivilege, match="is not in the group of team reports"):
                as_team(statements, team_like)
        revoke(db, platform_user)
        revoke(db, team_like)
        as_team(team_revocation_statements(names), name)
        assert not role_exists(db, name)
        # Again: Vault may retry a revocation.
        as_team(team_revocation_statements(names), name)
    finally:
        with db.as_superuser(db.database) as conn:
            for statement in team_drop_statements(names, db.database):
                conn.execute(statement)
        with db.as_admin() as conn:
            for statement in revoke_statements(schemas_of(orders), names.group, db.database):
                conn.execute(statement)
            conn.execute(as_text(sql.SQL("DROP ROLE {}").format(sql.Identifier(names.group))))
    assert not role_exists(db, names.user)


def test_a_failed_creation_statement_of_the_admin_leaves_its_password_out_of_the_servers_log(db):
    """A creation statement that fails (its name taken) as the admin Vault connects as: PostgreSQL
    would log a failed statement's text, password and all, for any other session; the admin's are
    unlogged (statement_text_unlogged), so the server's log holds the error but not the password. The
    same failure in another session is logged whole, so the log is the one being written."""
    taken, _ = issue(db, READER)
    hidden, shown = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    statement = creation_statements(group_role_name("dbcreds", READER))[0]
    with db.as_admin() as conn, pytest.raises(errors.DuplicateObject):
        conn.execute(fill(statement, taken, hidden, "2999-01-01 00:00:00+0000"))
    with db.as_superuser("app") as conn, pytest.raises(errors.DuplicateObject):
        conn.execute(fill(statement, taken, shown, "2999-01-01 00:00:00+0000"))
    log = (db.server.pgdata / "server.log").read_text()
    assert log.count(f'role "{taken}" already exists') == 2
    assert shown in log
    assert hidden not in log
    revoke(db, taken)
