"""The post-deploy checks against a real OpenBao and PostgreSQL, and OpenBao's own database plugin
running the generated SQL: issuance, username template, revocation, root rotation.
"""

import psycopg
import pytest

from components.checks import CaFiles, check_bootstrap_password, run_checks
from tests.support.demo import client_checks



def dynamic_roles(db) -> list[str]:
    with db.as_superuser(db.database) as conn:
        return [r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v\\_%'")]


def test_every_check_passes_and_leaves_no_role(engine_env):
    db, _vault, clients, target = engine_env
    report = run_checks(target, client_checks(clients), db.admin, db.admin_password)
    assert report.passed, report.failures()
    names = [r.name for r in report.results]
    assert "reader: revoked user cannot log in" in names and "app: cannot read other clients' credentials" in names
    assert dynamic_roles(db) == []
    # The report holds no secret.
    text = str(report.as_dict())
    assert db.admin_password not in text and clients["app"].secret_id not in text


def test_usernames_come_from_the_template_and_fit(engine_env):
    db, vault, clients, _target = engine_env
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


def test_a_check_that_should_fail_does(engine_env):
    db, _vault, clients, target = engine_env
    # SELECT is allowed for the reader: listing it as forbidden must fail the report.
    report = run_checks(target, client_checks(clients, reader_forbidden=["SELECT count(*) FROM users"]),
                        db.admin, db.admin_password)
    assert not report.passed
    assert "reader: forbidden statements are refused: allowed: SELECT count(*) FROM users" in report.failures()
    assert dynamic_roles(db) == []


def test_the_bootstrap_password_check_fails_for_a_password_that_works(engine_env):
    db, _vault, _clients, target = engine_env

    files = CaFiles(target)
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


def test_a_static_role_rotates_the_service_users_password(engine_env):
    db, vault, _clients, _target = engine_env
    first = vault.root.read("database/static-creds/svc_reporting")["data"]
    assert first["username"] == "svc_reporting" and first["ttl"] > 0
    with db.connect("svc_reporting", first["password"]) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] >= 3
    vault.root.write("database/rotate-role/svc_reporting")
    second = vault.root.read("database/static-creds/svc_reporting")["data"]
    assert second["password"] != first["password"]
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        db.connect("svc_reporting", first["password"])
    db.connect("svc_reporting", second["password"]).close()


def test_postgres_restarted_while_credentials_are_issued(engine_env):
    """Issuance and revocation keep going through a database restart: failures only while it is
    down, each a clear error; afterwards every request succeeds. A revocation that failed while the
    database was down keeps its lease in Vault (and its user in the database): no user is ever
    without a lease, and revoking the lease again once the database is back drops it."""
    import concurrent.futures
    import threading
    import time

    import hvac.exceptions

    db, vault, _clients, _target = engine_env
    restarted, stop = threading.Event(), threading.Event()
    outcomes: list[tuple[float, str]] = []

    unrevoked: list[str] = []

    def worker():
        while not stop.is_set():
            secret = None
            try:
                secret = vault.root.read("database/creds/reader")
                vault.root.sys.revoke_lease(lease_id=secret["lease_id"])
                outcomes.append((time.monotonic(), "ok"))
            except hvac.exceptions.VaultError as error:
                outcomes.append((time.monotonic(), f"error: {error}"))
                if secret:
                    unrevoked.append(secret["lease_id"])
                time.sleep(0.1)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(worker) for _ in range(8)]
        time.sleep(1.5)
        db.server.stop()
        db.server.start()
        back = time.monotonic()
        restarted.set()
        time.sleep(3)
        stop.set()
        for future in futures:
            future.result()
    errors = [o for t, o in outcomes if o != "ok"]
    after = [o for t, o in outcomes if t > back + 1]
    assert len(after) > 10 and all(o == "ok" for o in after), after[:3]
    assert all("database" in e or "connection" in e or "dial" in e or "terminat" in e for e in errors), errors[:3]
    leases = (vault.root.list("sys/leases/lookup/database/creds/reader") or {}).get("data", {}).get("keys", [])
    assert sorted(leases) == sorted(lease.rsplit("/", 1)[1] for lease in unrevoked)
    assert len(dynamic_roles(db)) == len(leases)
    for lease in unrevoked:
        vault.root.sys.revoke_lease(lease_id=lease)
    assert dynamic_roles(db) == []
