"""The post-deploy checks against a real OpenBao and PostgreSQL, and OpenBao's own database plugin
running the generated SQL: issuance, username template, revocation, root rotation.
"""

import pytest

from components.checks import ClientCheck, Target, _Files, check_bootstrap_password, run_checks
from components.grants import GrantSpec
from tests.support.postgres import create_groups, running_postgres
from tests.support.vault import configure_database_engine, running_openbao

READER = GrantSpec(name="reader", privileges=("SELECT",), schemas=("public",), default_ttl=600, max_ttl=3600)
APP = GrantSpec(name="app", privileges=("SELECT", "INSERT", "UPDATE", "DELETE"),
                tables=("public.users", "public.orders"), default_ttl=600, max_ttl=3600)

READER_ALLOWED = ["SELECT count(*) FROM users", "SELECT count(*) FROM orders"]
READER_FORBIDDEN = ["INSERT INTO users (name, email) VALUES ('x', 'x@example.com')", "DELETE FROM orders",
                    "CREATE TABLE public.evil (id int)"]
APP_ALLOWED = ["INSERT INTO users (name, email) VALUES ('check', 'check@example.com')",
               "UPDATE users SET name = name", "DELETE FROM orders WHERE id < 0", "SELECT count(*) FROM users"]
APP_FORBIDDEN = ["TRUNCATE orders", "CREATE TABLE public.evil (id int)", "CREATE ROLE evil"]


@pytest.fixture(scope="module")
def stack():
    with running_postgres() as db, running_openbao() as vault:
        create_groups(db, (READER, APP), "dbcreds_group")
        clients = configure_database_engine(vault, db, (READER, APP))
        target = Target(vault.server.address, vault.ca_pem, "127.0.0.1", db.server.port, db.database,
                        db.ca_file.read_text())
        yield db, vault, clients, target


def checks(clients, reader_forbidden=READER_FORBIDDEN):
    return [
        ClientCheck("reader", "approle", clients["reader"].role_id, clients["reader"].secret_id,
                    clients["reader"].creds_path, READER_ALLOWED, reader_forbidden),
        ClientCheck("app", "approle", clients["app"].role_id, clients["app"].secret_id,
                    clients["app"].creds_path, APP_ALLOWED, APP_FORBIDDEN),
    ]


def dynamic_roles(db) -> list[str]:
    with db.as_superuser(db.database) as conn:
        return [r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v\\_%'")]


def test_every_check_passes_and_leaves_no_role(stack):
    db, _vault, clients, target = stack
    report = run_checks(target, checks(clients), db.admin, db.admin_password)
    assert report.passed, report.failures()
    names = [r.name for r in report.results]
    assert "reader: revoked user cannot log in" in names and "app: cannot read other clients' credentials" in names
    assert dynamic_roles(db) == []
    # The report holds no secret.
    text = str(report.as_dict())
    assert db.admin_password not in text and clients["app"].secret_id not in text


def test_usernames_come_from_the_template_and_fit(stack):
    db, vault, clients, _target = stack
    issued = [vault.root.read("database/creds/app") for _ in range(3)]
    names = [s["data"]["username"] for s in issued]
    try:
        assert len(set(names)) == 3
        for name in names:
            assert name.startswith("v_app_") and len(name.encode()) <= 63 and name == name.lower()
        assert sorted(dynamic_roles(db)) == sorted(names)
    finally:
        for secret in issued:
            vault.root.sys.revoke_lease(lease_id=secret["lease_id"])
    assert dynamic_roles(db) == []


def test_a_check_that_should_fail_does(stack):
    db, _vault, clients, target = stack
    # SELECT is allowed for the reader: listing it as forbidden must fail the report.
    report = run_checks(target, checks(clients, reader_forbidden=["SELECT count(*) FROM users"]),
                        db.admin, db.admin_password)
    assert not report.passed
    assert "reader: forbidden statements are refused: allowed: SELECT count(*) FROM users" in report.failures()
    assert dynamic_roles(db) == []


def test_the_bootstrap_password_check_fails_for_a_password_that_works(stack):
    db, _vault, _clients, target = stack

    files = _Files(target)
    try:
        # The admin password rotated: the bootstrap one is refused.
        assert check_bootstrap_password(target, files, db.admin, db.admin_password).passed
        # A password that works makes the check fail.
        with db.as_superuser() as conn:
            conn.execute("CREATE ROLE dbcreds_probe LOGIN PASSWORD 'probe-password-1234'")
            conn.execute(f"GRANT CONNECT ON DATABASE {db.database} TO dbcreds_probe")
        assert not check_bootstrap_password(target, files, "dbcreds_probe", "probe-password-1234").passed
    finally:
        files.close()
        with db.as_superuser() as conn:
            conn.execute(f"REVOKE CONNECT ON DATABASE {db.database} FROM dbcreds_probe")
            conn.execute("DROP ROLE IF EXISTS dbcreds_probe")
