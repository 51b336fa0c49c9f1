"""The generated SQL on a real PostgreSQL server, run as the non-superuser admin, as Vault runs it.

Vault's database plugin fills {{name}}, {{password}} and {{expiration}} and runs
the statements over its admin connection; these tests do the same, so what the
dynamic roles can do, and that revocation leaves nothing behind, is proved on
the server itself.
"""

import concurrent.futures
import datetime
import secrets

import psycopg
import pytest
from psycopg import errors

from components.grants import GrantSpec
from components.postgres_sql import (
    creation_statements,
    grant_statements,
    group_role_name,
    max_username_bytes,
    revocation_statements,
    revoke_statements,
    schemas_of,
)
from tests.support.postgres import create_groups, running_postgres

READER = GrantSpec(name="reader", privileges=("SELECT",), schemas=("public",))
APP = GrantSpec(
    name="app", privileges=("SELECT", "INSERT", "UPDATE", "DELETE"), tables=("public.users", "public.orders")
)


@pytest.fixture(scope="module")
def db():
    with running_postgres() as database:
        create_groups(database, (READER, APP), "dbcreds")
        yield database


def fill(statement: str, name: str, password: str = "", expiration: str = "") -> str:
    return statement.replace("{{name}}", name).replace("{{password}}", password).replace("{{expiration}}", expiration)


def issue(db, spec: GrantSpec, ttl: datetime.timedelta = datetime.timedelta(hours=1)) -> tuple[str, str]:
    """What Vault does on a creds read: a new name and password, the creation SQL as the admin."""
    name = f"v_{spec.name}_{secrets.token_hex(10)}_{int(datetime.datetime.now().timestamp())}"
    assert len(name.encode()) <= max_username_bytes()
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
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] >= 3
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
        for forbidden in ("TRUNCATE orders", "CREATE TABLE public.evil (id int)", "ALTER TABLE users ADD COLUMN x int"):
            with pytest.raises((errors.InsufficientPrivilege, errors.WrongObjectType)):
                conn.execute(forbidden)
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
