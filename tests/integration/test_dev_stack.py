"""The mission, through the root program: `__main__.py` on a temporary stack with the dev stack's
config, the real CLI, OpenBao and PostgreSQL. Everything is checked from the outside, through
the stack's outputs, with hvac and psycopg, as a team using the stack would.

Beside dev's `reader` and `app`, the stack has a `brief` role (seconds-long leases) and its
client, for expiry.
"""

import concurrent.futures
import json
import math
import os
import signal
import threading
import time
from pathlib import Path

import hvac
from cryptography.hazmat.primitives import serialization
import psycopg
import psycopg.sql
import pytest
import requests
from hvac import exceptions as vault_errors
from psycopg import errors
from pulumi import automation as auto

from components.vault.checks import CaFiles, Target, check_bootstrap_password, renew, revoke
from stacks import local_target as local
from tests.automation import assert_only_the_checks_change, state_text, updates_only
from tests.support.certs import issue_certificate, make_ca
from tests.support.audit_rotation import audited, each_once, rotated_under_requests
from tests.support.dev_stack import dev_stack, quiet
from tests.support.waiting import wait_for
from tests.support.vault_kv import enable_kv_v2
from toolchain.stack_file import file_values

DEV = file_values("dev")
ROLES = {**DEV["dbcreds:roles"],
         "brief": {"privileges": ["SELECT"], "tables": ["public.users"], "default_ttl": "6s", "max_ttl": "12s"}}
CLIENTS = {**DEV["dbcreds:clients"],
           "brief": {"role": "brief", "allowed": ["SELECT count(*) FROM public.users"],
                     "forbidden": ["SELECT count(*) FROM public.orders"]}}
#: The rows the database's demo schema seeds into public.users (components.postgres_sql.DEMO_SCHEMA); the
#: checks and tests that write rows roll them back or delete them.
SEEDED_USERS = 3
OUTPUTS = {"vault_addr", "vault_ca_pem", "vault_admin_token", "db_engine", "db_host", "db_port", "db_name",
           "db_ca_pem", "database_mount", "clients", "checks"}


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    with dev_stack(tmp_path_factory.mktemp("dev"), "dev", roles=json.dumps(ROLES),
                   clients=json.dumps(CLIENTS)) as stack:
        yield stack


def bootstrap_password(running) -> str:
    """The database admin's first password, from the decrypted state (no output holds it)."""
    (server,) = [r for r in running.stack.export_stack().deployment["resources"] if r["urn"].endswith("::db-postgres")]
    return server["outputs"]["admin_password"]["plaintext"].strip('"')


def issue(vault: hvac.Client, path: str) -> dict:
    return vault.read(path)


def role_exists(running, user: str) -> bool:
    return user in local.dynamic_users(running.config)


def test_outputs_are_the_promised_ones(running):
    out = running.outputs
    assert OUTPUTS <= set(out)
    assert out["db_engine"] == "postgresql" and isinstance(out["db_port"], int) and out["db_host"] == "127.0.0.1"
    assert out["vault_addr"].startswith("https://127.0.0.1:") and out["database_mount"] == "database"
    assert running.secret["vault_admin_token"] and not running.secret["vault_ca_pem"]
    assert set(out["clients"]) == {"reader", "app", "brief"}
    for name, client in out["clients"].items():
        assert set(client) == {"approle_mount", "role_id", "secret_id", "creds_path"}
        assert client["creds_path"] == f"database/creds/{CLIENTS[name]['role']}"
    # secret_ids are secret within the map: the state holds them only as ciphertext.
    state = state_text(running.stack)
    assert all(c["secret_id"] not in state for c in out["clients"].values())
    assert out["vault_admin_token"] not in state
    exported = running.stack.export_stack().deployment["resources"][0]["outputs"]["clients"]
    assert exported["reader"]["secret_id"]["4dabf18193072939515e22adb298388d"] == "1b47061264138c4ac30d75fd1eb44270"


def test_the_checks_ran_in_up_and_passed(running):
    report = running.outputs["checks"]
    assert report["passed"] and not running.secret["checks"]
    names = {c["name"] for c in report["checks"]}
    for client in CLIENTS:
        assert {f"{client}: AppRole login", f"{client}: forbidden statements are refused",
                f"{client}: cannot renew or revoke other clients' leases",
                f"{client}: revoked (lease id in the body) user cannot log in"} <= names
    assert {"static role svc_reporting: its current password logs in",
            "the bootstrap admin password is rejected (root rotated)", "a plaintext connection is refused"} <= names
    # The checks gave back every credential they took.
    assert local.dynamic_users(running.config) == []
    # OpenBao's metrics, read with the stack's token (refused without one): the one node is unsealed and
    # active, no lease was given up on, no audit write failed.
    assert "OpenBao serves its metrics (Prometheus) to a token, and only to one" in names
    metrics = report["metrics"]
    assert (metrics["unsealed"], metrics["active"], metrics["irrevocable_leases"], metrics["audit_failures"]) == (
        1, 1, 0, 0), metrics
    # PostgreSQL's counters, read in a client's session while each client holds its one credential: a
    # dynamic user per client, at least that session (Vault's own connections count too), under the
    # server's max_connections (components/servers/postgres.py: 200).
    database = report["database"]
    assert database["dynamic_users"] == len(running.config.clients), database
    assert database["connections"] >= 1 and database["max_connections"] == 200 and database["deadlocks"] == 0


@pytest.mark.parametrize("client", ["reader", "app", "brief"])
def test_each_client_gets_exactly_its_grants_over_verify_full(running, client):
    vault = running.login(client)
    secret = issue(vault, running.outputs["clients"][client]["creds_path"])
    creds = secret["data"]
    try:
        with running.connect(creds["username"], creds["password"], autocommit=True) as conn:
            assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]
            assert conn.info.parameter_status("is_superuser") == "off"
            for statement in CLIENTS[client]["allowed"]:
                with conn.transaction(force_rollback=True):
                    conn.execute(statement)
            for statement in CLIENTS[client]["forbidden"]:
                with pytest.raises(errors.InsufficientPrivilege):
                    with conn.transaction(force_rollback=True):
                        conn.execute(statement)
        # verify-full: the server's name is checked, not only its CA.
        with pytest.raises(psycopg.OperationalError, match="does not match host name"):
            psycopg.connect(host="db.example.invalid", hostaddr="127.0.0.1", port=running.outputs["db_port"], dbname="app", user=creds["username"],
                            password=creds["password"], sslmode="verify-full",
                            sslrootcert=running.ca_file("db_ca_pem"), connect_timeout=5)
    finally:
        revoke(vault, secret["lease_id"])


def test_a_roles_connection_limit_holds_on_the_database(running):
    """dev's app role allows each of its users 5 sessions: the 6th is refused by PostgreSQL itself."""
    (limit,) = [r.connection_limit for r in running.config.database.roles if r.name == "app"]
    assert limit == 5
    vault = running.login("app")
    secret = issue(vault, running.outputs["clients"]["app"]["creds_path"])
    sessions = []
    try:
        for _ in range(limit):
            sessions.append(running.connect(secret["data"]["username"], secret["data"]["password"]))
        with pytest.raises(psycopg.OperationalError, match="too many connections for role"):
            running.connect(secret["data"]["username"], secret["data"]["password"])
    finally:
        for conn in sessions:
            conn.close()
        revoke(vault, secret["lease_id"])


def test_the_database_certificate_comes_from_vaults_pki(running):
    """dev's `db_certificates: auto` is vault_pki: Vault's intermediate, signed by the bootstrap CA,
    issued the certificate PostgreSQL serves; the checks verified the database against the chain
    Vault serves."""
    from cryptography import x509

    served = running.admin().secrets.pki.read_ca_certificate_chain(mount_point="pki-db")
    intermediate, root = x509.load_pem_x509_certificates(served.encode())
    presented = x509.load_pem_x509_certificates(
        (local.database_server(running.config).data_dir / "server.crt").read_bytes())
    server = presented[0]
    server.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(root)
    assert root.subject == root.issuer and root.public_bytes(
        serialization.Encoding.PEM).decode() in running.outputs["vault_ca_pem"] + running.outputs["db_ca_pem"]
    # The server presents the intermediate too, so a client holding only the bootstrap CA verifies it.
    assert presented[1] == intermediate
    serial = format(server.serial_number, "x").zfill(32)
    listed = {k.replace(":", "").replace("-", "").lower()
              for k in running.admin().secrets.pki.list_certificates(mount_point="pki-db")["data"]["keys"]}
    assert serial.lstrip("0") in {k.lstrip("0") for k in listed}
    assert "the CA chain Vault's PKI serves (pki-db) is read" in {c["name"] for c in running.outputs["checks"]["checks"]}


def test_usernames_come_from_the_template_and_fit(running):
    vault = running.admin()
    issued = [issue(vault, "database/creds/app") for _ in range(3)]
    names = [s["data"]["username"] for s in issued]
    try:
        assert len(set(names)) == 3
        for name in names:
            assert name.startswith("v_app_") and len(name.encode()) <= 63 and name == name.lower()
            assert role_exists(running, name)
    finally:
        for secret in issued:
            vault.sys.revoke_lease(lease_id=secret["lease_id"])


def test_a_lease_users_grants_widened_by_hand_fail_the_up_naming_them(running):
    reader = running.login("reader")
    secret = issue(reader, running.outputs["clients"]["reader"]["creds_path"])
    user = secret["data"]["username"]
    try:
        with local.superuser(running.config) as conn:
            conn.execute(psycopg.sql.SQL("GRANT DELETE ON public.orders TO {}").format(psycopg.sql.Identifier(user)))
            conn.execute(psycopg.sql.SQL("GRANT pg_read_all_data TO {}").format(psycopg.sql.Identifier(user)))
        with pytest.raises(auto.CommandError) as failed:
            running.up()
        assert (f"dynamic users hold nothing beyond their role's group: {user} of role reader holds beyond its "
                "grants: membership of pg_read_all_data, DELETE ON TABLE public.orders") in str(failed.value)
    finally:
        revoke(reader, secret["lease_id"])
    # Revocation drops the widened user too; the next up passes.
    assert not role_exists(running, user)
    assert running.up().outputs["checks"].value["passed"]


def test_the_bootstrap_password_no_longer_logs_in(running):
    password = bootstrap_password(running)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        running.connect("dbcreds_admin", password)
    # The check that says so fails for a password that works.
    target = Target(running.outputs["vault_addr"], running.outputs["vault_ca_pem"], running.outputs["db_host"],
                    running.outputs["db_port"], running.outputs["db_name"], running.outputs["db_ca_pem"])
    files = CaFiles(target)
    try:
        assert check_bootstrap_password(target, files, "dbcreds_admin", password).passed
        with local.superuser(running.config) as conn:
            conn.execute("CREATE ROLE dbcreds_probe LOGIN PASSWORD 'probe-password-1234'")
            conn.execute("GRANT CONNECT ON DATABASE app TO dbcreds_probe")
        assert not check_bootstrap_password(target, files, "dbcreds_probe", "probe-password-1234").passed
    finally:
        files.close()
        with local.superuser(running.config) as conn:
            conn.execute("REVOKE CONNECT ON DATABASE app FROM dbcreds_probe")
            conn.execute("DROP ROLE IF EXISTS dbcreds_probe")


def test_a_client_reaches_nothing_but_its_own(running):
    reader, app = running.login("reader"), running.login("app")
    app_secret = issue(app, "database/creds/app")
    try:
        for path in ("database/creds/app", "database/creds/brief", "database/static-creds/svc_reporting",
                     "database/config/app", "database/roles/reader", "database/roles/app"):
            with pytest.raises(vault_errors.Forbidden):
                reader.read(path)
        lease = app_secret["lease_id"]
        for attempt in (lambda: revoke(reader, lease), lambda: reader.sys.revoke_lease(lease_id=lease),
                        lambda: renew(reader, lease, 60), lambda: reader.sys.renew_lease(lease_id=lease),
                        lambda: reader.sys.list_mounted_secrets_engines(),
                        lambda: reader.write("database/rotate-root/app"),
                        lambda: reader.write("auth/approle/role/reader/secret-id")):
            with pytest.raises(vault_errors.Forbidden):
                attempt()
        # The lease is untouched: its owner still renews it, by the 60 s it asks for.
        assert renew(app, lease, 60)["lease_duration"] == 60
    finally:
        revoke(app, app_secret["lease_id"])


def test_revoking_a_lease_drops_the_user(running):
    vault = running.login("reader")
    secret = issue(vault, "database/creds/reader")
    user, password = secret["data"]["username"], secret["data"]["password"]
    with running.connect(user, password) as conn:
        conn.execute("SELECT 1")
        assert role_exists(running, user)
        revoke(vault, secret["lease_id"])
        # Revocation ended the open session too.
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    assert not role_exists(running, user)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        running.connect(user, password)


def test_an_expired_lease_cannot_log_in(running):
    vault = running.login("brief")
    secret = issue(vault, "database/creds/brief")
    user, password = secret["data"]["username"], secret["data"]["password"]
    assert secret["lease_duration"] == 6  # brief's default_ttl
    running.connect(user, password).close()
    time.sleep(secret["lease_duration"] + 1)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        running.connect(user, password)
    # Vault's expiry also revoked the lease, which dropped the user.
    deadline = time.monotonic() + 15
    while role_exists(running, user) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not role_exists(running, user)


def test_the_lease_cap_holds_on_issue_and_on_renew(running):
    cap = running.config.database.max_ttl_cap
    admin = running.admin()
    tune = admin.sys.read_mount_configuration("database")["data"]
    assert tune["max_lease_ttl"] == cap
    vault = running.login("app")
    # Asked for more, a renewal gets what is left of the role's max_ttl: max_ttl less the time since the
    # lease's issue, in whole seconds (truncated). That time lies between what is known to have passed
    # (nothing for app, the 2 s slept for brief) and `elapsed`, timed here from before the issue to after
    # the renewal's answer: the tolerance is those measured seconds (one or two here), not a guess.
    issued_at = time.monotonic()
    secret = issue(vault, "database/creds/app")
    try:
        # The role's default TTL (1h) on issue, then never past its max_ttl (8h), whatever the client asks.
        assert secret["lease_duration"] == 3600
        renewed = renew(vault, secret["lease_id"], 10 * cap)["lease_duration"]
        elapsed = time.monotonic() - issued_at
        assert 8 * 3600 - math.ceil(elapsed) <= renewed <= 8 * 3600, (renewed, elapsed)
        brief = running.login("brief")
        issued_at = time.monotonic()
        short = issue(brief, "database/creds/brief")
        time.sleep(2)
        renewed = renew(brief, short["lease_id"], cap)["lease_duration"]
        elapsed = time.monotonic() - issued_at
        # brief's max_ttl is 12 s, and at least the 2 s slept have passed since the issue.
        assert 12 - math.ceil(elapsed) <= renewed <= 12 - 2, (renewed, elapsed)
        revoke(brief, short["lease_id"])
    finally:
        revoke(vault, secret["lease_id"])


def test_the_static_role_rotates_the_service_users_password(running):
    vault = running.admin()
    first = vault.read("database/static-creds/svc_reporting")["data"]
    assert first["username"] == "svc_reporting" and 0 < first["ttl"] <= 86400
    with running.connect("svc_reporting", first["password"]) as conn:
        assert conn.execute("SELECT count(*) FROM public.users").fetchone()[0] == SEEDED_USERS
    vault.write("database/rotate-role/svc_reporting")
    second = vault.read("database/static-creds/svc_reporting")["data"]
    assert second["password"] != first["password"]
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        running.connect("svc_reporting", first["password"])
    running.connect("svc_reporting", second["password"]).close()


def test_a_preview_after_up_changes_nothing_but_the_checks(running):
    running.up()
    assert_only_the_checks_change(running.stack)
    # A refresh reads every resource back from Vault and the servers: still nothing to change.
    running.stack.refresh(on_output=quiet)
    assert_only_the_checks_change(running.stack)


def step_ops(stack: auto.Stack) -> dict[str, str]:
    """Each resource's operation in the last update, by name."""
    ops = {}

    def event(e):
        if e.resource_pre_event:
            ops[e.resource_pre_event.metadata.urn.rsplit("::", 1)[1]] = e.resource_pre_event.metadata.op
    stack.preview(on_event=event)
    return ops


def test_roles_added_after_rotation_keep_the_connection_working_and_a_16_character_role_fits(running):
    """Two roles added in one up (one `up` and one to take them away, for what two tests proved with two
    each). The connection's allowed_roles change: it is updated without the bootstrap password
    (write-only, not sent again), and keeps the rotated one. The connection's username template, rendered
    by OpenBao itself for the longest role name, fits."""
    password = bootstrap_password(running)
    role = "quarterly-report"
    assert len(role) == 16
    added = {"privileges": ["SELECT"], "tables": ["public.users"], "default_ttl": "5m", "max_ttl": "10m"}
    running.set_config("roles", json.dumps({**ROLES, "audit": added, role: added}))
    try:
        ops = step_ops(running.stack)
        assert ops["engine-connection"] == auto.OpType.UPDATE and ops["engine-rotate-root"] == auto.OpType.SAME
        assert ops["engine-role-audit"] == auto.OpType.CREATE
        assert running.up().outputs["checks"].value["passed"]
        secret = running.admin().read("database/creds/audit")
        running.connect(secret["data"]["username"], secret["data"]["password"]).close()
        running.admin().sys.revoke_lease(lease_id=secret["lease_id"])
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            running.connect("dbcreds_admin", password)

        vault = running.admin()
        secret = vault.read(f"database/creds/{role}")
        try:
            name = secret["data"]["username"]
            # v _ <role, hyphens as underscores> _ <20 random> _ <unix time>
            assert name.startswith("v_quarterly_report_")
            assert len(name.encode()) == 2 + 16 + 1 + 20 + 1 + len(str(int(time.time())))
            assert len(name.encode()) <= 63 and role_exists(running, name)
        finally:
            vault.sys.revoke_lease(lease_id=secret["lease_id"])
    finally:
        running.set_config("roles", json.dumps(ROLES))
        running.up()
    assert "audit" not in running.admin().list("database/roles")["data"]["keys"]
    assert not any(u.startswith("v_quarterly") for u in local.dynamic_users(running.config))


def test_a_failing_check_fails_the_up_naming_it(running):
    wrong = {**CLIENTS, "reader": {**CLIENTS["reader"], "forbidden": ["SELECT count(*) FROM public.users"]}}
    running.set_config("clients", json.dumps(wrong))
    try:
        with pytest.raises(auto.CommandError,
                           match="reader: forbidden statements are refused: allowed: SELECT count"):
            running.up()
    finally:
        running.set_config("clients", json.dumps(CLIENTS))
        running.up()
    assert local.dynamic_users(running.config) == []


@pytest.fixture
def kv_mount(running):
    """A KV mount of the test's own in the stack's Vault (no resource of the stack), disabled again
    whatever the test found."""
    enable_kv_v2(running.admin(), "kv")
    try:
        yield "kv"
    finally:
        running.admin().sys.disable_secrets_engine("kv")


def test_after_a_machine_restart_the_next_up_converges(running, kv_mount):
    vault = running.admin()
    vault.secrets.kv.v2.create_or_update_secret("probe", secret={"kept": "yes"}, mount_point=kv_mount)
    # TLS only: a plaintext request to Vault's listener is not served, nor a plaintext database login.
    plain = requests.get(running.outputs["vault_addr"].replace("https://", "http://") + "/v1/sys/health", timeout=5)
    assert plain.status_code == 400
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        running.connect("dbcreds_admin", "x", sslmode="disable")
    with pytest.raises(psycopg.OperationalError, match="rejects connection"):
        running.connect("postgres", "x")

    # The processes die, the data folders stay.
    os.kill(local.vault_server(running.config).pid(), signal.SIGKILL)
    postmaster = (local.database_server(running.config).data_dir / "postmaster.pid").read_text().split()[0]
    os.kill(int(postmaster), signal.SIGKILL)
    time.sleep(1)
    # The preview names what keeps the two servers running (and the checks), nothing built on them.
    expected = updates_only(running.stack, 3)
    assert running.stack.preview(on_output=quiet).change_summary == expected
    result = running.up()
    assert result.summary.resource_changes == expected
    assert result.outputs["checks"].value["passed"]
    vault = running.admin()
    assert not vault.sys.is_sealed()
    read = vault.secrets.kv.v2.read_secret_version("probe", mount_point=kv_mount, raise_on_deleted_version=True)
    assert read["data"]["data"] == {"kept": "yes"}
    # The audit device logged every request, with the token hashed.
    audit = (local.vault_server(running.config).audit_log).read_text()
    assert f'"path":"{kv_mount}/data/probe"' in audit and running.outputs["vault_admin_token"] not in audit


def test_vault_restarted_sealed_while_clients_hold_leases(running):
    """Vault stopped and started again (so sealed) while both clients hold leases: the next up unseals
    it, the clients' tokens and leases survive, renew, and their revocation drops the users."""
    clients = {name: running.login(name) for name in ("app", "reader")}
    held = {name: issue(vault, running.outputs["clients"][name]["creds_path"]) for name, vault in clients.items()}
    server = local.vault_server(running.config)
    server.stop()
    server.start()
    assert running.admin().sys.is_sealed()
    with pytest.raises(vault_errors.VaultDown):
        renew(clients["app"], held["app"]["lease_id"], 60)
    assert running.up().outputs["checks"].value["passed"]
    assert not running.admin().sys.is_sealed()
    for name, vault in clients.items():
        secret = held[name]
        renewed = renew(vault, secret["lease_id"], 600)
        # The 600 s asked for: well within each role's max_ttl.
        assert renewed["lease_id"] == secret["lease_id"] and renewed["lease_duration"] == 600
        with running.connect(secret["data"]["username"], secret["data"]["password"]) as conn:
            conn.execute("SELECT 1")
        revoke(vault, secret["lease_id"])
        assert not role_exists(running, secret["data"]["username"])
    assert local.dynamic_users(running.config) == []


def state_output(running, name: str, key: str) -> str:
    (resource,) = [r for r in running.stack.export_stack().deployment["resources"] if r["urn"].endswith(f"::{name}")]
    value = resource["outputs"][key]
    return json.loads(value["plaintext"]) if isinstance(value, dict) else value


def test_an_expired_or_replaced_database_certificate_fails_the_up_then_a_new_one_recovers(running):
    database, port = local.database_server(running.config), running.outputs["db_port"]
    ca_cert, ca_key = state_output(running, "bootstrap-ca", "certPem"), state_output(
        running, "bootstrap-ca-key", "privateKeyPem")
    # Signed by the stack's own root (the end of the chain Vault's PKI serves), but ended an hour ago.
    expired = issue_certificate(ca_cert, ca_key, "localhost", ["localhost"], ["127.0.0.1"], server=True,
                                client=False, validity_hours=24, ended_hours_ago=1)
    other_ca = make_ca("someone else's CA", validity_hours=24)
    replaced = issue_certificate(other_ca["cert_pem"], other_ca["private_key_pem"], "localhost", ["localhost"],
                                 ["127.0.0.1"], server=True, client=False, validity_hours=24)
    for certificate, reason in ((expired, "it expired at "),
                                (replaced, "it was issued by CN=someone else's CA, not by the database CA")):
        database.install_tls(certificate["cert_pem"], certificate["private_key_pem"])
        database.reload()
        with pytest.raises(auto.CommandError) as failed:
            running.up()
        assert (f"the database's certificate verifies (verify-full): the database at 127.0.0.1:{port} presents a "
                "certificate that fails verify-full against the database CA") in str(failed.value)
        assert reason in str(failed.value)
    # A new certificate from Vault's PKI (what a renewal does): the next up installs it, and recovers.
    (cert_urn,) = [r["urn"] for r in running.stack.export_stack().deployment["resources"]
                   if r["urn"].endswith("::db-pki-server")]
    old_serial = state_output(running, "db-pki-server", "serialNumber")
    assert running.up(replace=[cert_urn]).outputs["checks"].value["passed"]
    assert state_output(running, "db-pki-server", "serialNumber") != old_serial


def test_postgres_restarted_while_credentials_are_issued(running):
    """Issuance works before and after a database restart; requests fail only while it is down,
    each with the database's error; a revocation that failed keeps its lease until revoked again."""
    vault, database = running.admin(), local.database_server(running.config)
    down, up, stop = threading.Event(), threading.Event(), threading.Event()
    outcomes: list[tuple[str, str]] = []
    unrevoked: list[str] = []

    def phase(started_after_up: bool) -> str:
        """before: done before the stop began; after: begun once the server was back; else during."""
        return "after" if started_after_up else ("during" if down.is_set() else "before")

    def worker():
        while not stop.is_set():
            started_after_up = up.is_set()
            secret = None
            try:
                secret = vault.read("database/creds/reader")
                vault.sys.revoke_lease(lease_id=secret["lease_id"])
                outcomes.append((phase(started_after_up), "ok"))
            except vault_errors.VaultError as error:
                outcomes.append((phase(started_after_up), str(error)))
                if secret:
                    unrevoked.append(secret["lease_id"])
                time.sleep(0.1)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(worker) for _ in range(8)]
        time.sleep(1.5)
        down.set()
        database.stop()
        database.start()
        time.sleep(1)
        up.set()
        time.sleep(3)
        stop.set()
        for future in futures:
            future.result()
    before = [o for p, o in outcomes if p == "before"]
    after = [o for p, o in outcomes if p == "after"]
    failures = [o for p, o in outcomes if o != "ok"]
    assert len(before) > 5 and set(before) == {"ok"}, before[:3]
    assert len(after) > 10 and set(after) == {"ok"}, [o for o in after if o != "ok"][:3]
    # Every failure happened while the database was down, and says why.
    assert all(p == "during" for p, o in outcomes if o != "ok")
    assert all(any(w in o for w in ("connection refused", "shutting down", "terminat", "the database system",
                                    "EOF", "connection reset", "broken pipe", "failed to connect"))
               for o in failures), failures[:3]
    leases = (vault.list("sys/leases/lookup/database/creds/reader") or {}).get("data", {}).get("keys", [])
    assert sorted(leases) == sorted(lease.rsplit("/", 1)[1] for lease in unrevoked)
    for lease in unrevoked:
        vault.sys.revoke_lease(lease_id=lease)
    assert local.dynamic_users(running.config) == []


def test_the_audit_log_rotates_under_load_without_losing_a_line(running):
    """`make rotate-audit`'s code on the stack, twice, while a client's requests keep coming: every
    request and response is in exactly one of the files, once, the moved ones kept, the server still
    serving."""
    from toolchain import rotate_audit

    audit = local.vault_server(running.config).audit_log
    env, work_dir = running.stack.workspace.env_vars, Path(running.stack.workspace.work_dir)
    moved, marker, sent = rotated_under_requests(
        running.admin(), audit, lambda: rotate_audit.rotate(running.stack.name, env, keep=14, work_dir=work_dir))
    assert len(moved) == 2 and all(marker in path.read_text() for path in moved)
    assert sent > 0 and audited([*moved, audit], marker) == each_once(marker, sent)
