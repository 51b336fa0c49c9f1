"""Certificates renew themselves inside their renewal window, through the root program (no `replace=`).

The stack's certificates live an hour (the servers') or two (the CA and Vault's PKI intermediate), and
their windows are set so that an `up` five seconds later is inside them: `cert_renew_before: 3595s` (the
database's certificate from Vault's PKI; OpenBao's listener from pulumi-tls takes it as 1 h, its whole
lifetime) and `intermediate_renew_before: 2h`. That `up` (with refresh, as `make up` runs it) reissues
the three on its own; the servers present the new ones on the wire; a session opened before is still
usable (PostgreSQL reloads); Vault's PKI issues from the new intermediate and has revoked the old
database certificate; the checks pass and their report names the new serials. With the windows back
to their default (a tenth of the lifetime), the next `up` changes no certificate, nor would the one
after it, with refresh.

Then, on the same stack, a database certificate already past its end (as after a machine off for
months): its lifetime set to a minute (`db_cert_validity: 60s`), nothing stopped, the minute waited out
(no clock is faked), the next `up` with refresh replaces it and names it, in the checks' report and in
a line of its output. OpenBao's listener (pulumi-tls, whole hours) cannot be made to expire here.
"""

import datetime
import json
import socket
import ssl
import struct
import time
from urllib.parse import urlsplit

import psycopg
import pytest
from cryptography import x509

from tests.support.dev_stack import dev_stack, quiet
from toolchain.stack_file import file_values

WINDOW = 3595
WINDOWS = {"ca_validity_hours": "2", "cert_validity_hours": "1", "cert_renew_before": f"{WINDOW}s",
           "intermediate_renew_before": "2h"}
MOUNT = "pki-db"
#: The certificates' resources, by name in the state.
LISTENER, INTERMEDIATE, DATABASE, CA = ("bootstrap-vault-listener", "db-pki-intermediate", "db-pki-server",
                                        "bootstrap-ca")


#: dev's reader role and client alone (the checks run at every up: fewer clients, quicker ups).
DEV = file_values("dev")
SMALL = {"roles": json.dumps({"reader": DEV["dbcreds:roles"]["reader"]}),
         "clients": json.dumps({"reader": DEV["dbcreds:clients"]["reader"]}), "service_users": "{}", "teams": "{}"}


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    with dev_stack(tmp_path_factory.mktemp("renewal"), "renewal", **SMALL, **WINDOWS) as stack:
        yield stack


def database_certificate(host: str, port: int) -> x509.Certificate:
    """The certificate PostgreSQL presents: TLS after its SSLRequest, read without verifying."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(struct.pack("!II", 8, 80877103))
        assert sock.recv(1) == b"S"
        with unverified().wrap_socket(sock, server_hostname=host) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def vault_certificate(address: str) -> x509.Certificate:
    """The certificate OpenBao's listener presents, read without verifying."""
    url = urlsplit(address)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        with unverified().wrap_socket(sock, server_hostname=url.hostname) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


def on_the_wire(running) -> dict[str, x509.Certificate]:
    return {"database": database_certificate(running.outputs["db_host"], running.outputs["db_port"]),
            "vault": vault_certificate(running.outputs["vault_addr"])}


def in_state(running) -> dict[str, x509.Certificate]:
    """Each certificate the state holds, by resource name (the database's: the leaf Vault issued)."""
    pems = {}
    for resource in running.stack.export_stack().deployment["resources"]:
        name = resource["urn"].rsplit("::", 1)[1]
        if name in (LISTENER, INTERMEDIATE, CA):
            pems[name] = resource["outputs"]["certPem"]
        elif name == DATABASE:
            pems[name] = resource["outputs"]["certificate"]
            pems["issuing_ca"] = resource["outputs"]["issuingCa"]
    return {name: x509.load_pem_x509_certificate(pem.encode()) for name, pem in pems.items()}


def vault_serial(cert: x509.Certificate) -> str:
    raw = format(cert.serial_number, "x")
    raw = raw.zfill(len(raw) + len(raw) % 2)
    return ":".join(raw[i:i + 2] for i in range(0, len(raw), 2))


def revocation_time(running, cert: x509.Certificate) -> int:
    """When Vault's PKI revoked this certificate (Unix seconds; 0: not revoked)."""
    return running.admin().read(f"{MOUNT}/cert/{vault_serial(cert)}")["data"]["revocation_time"]


def steps(run, **kwargs) -> dict[str, set[str]]:
    """`run` (`up` or a preview); each resource's steps in it, by name (same and refresh's reads left out)."""
    ops: dict[str, set[str]] = {}

    def event(e):
        if e.resource_pre_event and e.resource_pre_event.metadata.op.value not in ("same", "refresh"):
            ops.setdefault(e.resource_pre_event.metadata.urn.rsplit("::", 1)[1], set()).add(
                e.resource_pre_event.metadata.op.value)
    run(on_event=event, **kwargs)
    return ops


def test_an_up_inside_the_window_renews_every_certificate_in_it_and_one_outside_none(running):
    before, state = on_the_wire(running), in_state(running)
    assert before["database"] == state[DATABASE] and before["vault"] == state[LISTENER]
    session = running.connect_as("reader")  # verify-full, against the database CA
    times = "SELECT pg_backend_pid(), pg_postmaster_start_time(), pg_conf_load_time() FROM public.users LIMIT 1"
    session_pid, started, loaded = session.execute(times).fetchone()

    # Vault's PKI decides at a refresh whether its certificate is in its window (`renew_pending`): the
    # window starts 5 s after it was issued.
    time.sleep(max(0.0, state[DATABASE].not_valid_after_utc.timestamp() - WINDOW - time.time() + 1))
    ops = steps(running.up, refresh=True)
    after, renewed = on_the_wire(running), in_state(running)
    # Each certificate in its window was reissued, by the `up` alone: new serials on the wire and in the state.
    for name in (LISTENER, INTERMEDIATE, DATABASE):
        assert renewed[name].serial_number != state[name].serial_number, name
        assert ops.get(name), (name, "no step")
    assert after["database"] == renewed[DATABASE] and after["vault"] == renewed[LISTENER]
    # The CA (2 h, its window a tenth: 0 h) is outside its window: kept.
    assert renewed[CA] == state[CA] and CA not in ops
    # Vault's PKI issues from the renewed intermediate, and serves it in its chain.
    assert renewed["issuing_ca"] == renewed[INTERMEDIATE]
    renewed[DATABASE].verify_directly_issued_by(renewed[INTERMEDIATE])
    renewed[INTERMEDIATE].verify_directly_issued_by(renewed[CA])
    served_chain = x509.load_pem_x509_certificates(
        running.admin().secrets.pki.read_ca_certificate_chain(mount_point=MOUNT).encode())
    assert served_chain[0] == renewed[INTERMEDIATE]
    # PostgreSQL reloaded its configuration, without a restart: the session opened before still works.
    pid, started_after, loaded_after = session.execute(times).fetchone()
    assert (pid, started_after) == (session_pid, started) and loaded_after > loaded
    session.close()
    # The old database certificate is revoked in Vault's PKI; the new one is not.
    assert revocation_time(running, state[DATABASE]) > 0
    assert revocation_time(running, renewed[DATABASE]) == 0
    # The checks passed, and their report names what the servers present now.
    report = running.outputs["checks"]
    assert report["passed"], report
    for server, cert in after.items():
        assert report["certificates"][server]["serial"] == vault_serial(cert)
        assert report["certificates"][server]["not_after"] == f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
        # ... and the one each replaced, still valid (renewed inside its window, not after its end).
        assert report["certificates"][server]["replaced"] == {
            "serial": vault_serial(before[server]), "expired": False,
            "not_after": f"{before[server].not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"}

    # Back to the default windows (a tenth of each lifetime): outside them, no certificate changes. The
    # windows themselves change in place.
    running.set_config("cert_renew_before", "")
    running.set_config("intermediate_renew_before", "")
    ops = steps(running.up)
    assert on_the_wire(running) == after and in_state(running) == renewed
    assert all(ops.get(name, {"update"}) == {"update"} for name in (LISTENER, INTERMEDIATE, DATABASE, CA)), ops
    assert running.outputs["checks"]["passed"]
    # A refresh reads the database certificate's window again (Vault's PKI decides there): nothing to renew.
    ops = steps(lambda **kwargs: running.stack.preview(on_output=quiet, **kwargs), refresh=True)
    assert not {LISTENER, INTERMEDIATE, DATABASE, CA} & set(ops), ops


#: The database certificate's lifetime in the next test (`db_cert_validity`, its shortest): long enough for
#: the `up` that issues it, short enough to wait out.
LIFETIME = 60


def test_a_database_certificate_already_past_its_end_is_replaced_by_the_next_up_which_names_it(running):
    """As after a machine off for months: nothing is stopped, the certificate PostgreSQL presents simply
    passes its end (a lifetime of a minute, `db_cert_validity`), then `up` with refresh (as `make up`
    runs it) replaces it, and says so. OpenBao's listener is pulumi-tls's, whole hours: it cannot be made
    to expire here, and is kept."""
    for window in ("cert_renew_before", "intermediate_renew_before"):
        running.set_config(window, "")
    running.set_config("db_cert_validity", f"{LIFETIME}s")
    running.up()  # A new lifetime: a new certificate, of a minute.
    expiring, listener = in_state(running)[DATABASE], in_state(running)[LISTENER]
    assert expiring.not_valid_after_utc - expiring.not_valid_before_utc <= datetime.timedelta(seconds=LIFETIME + 30)
    assert on_the_wire(running)["database"] == expiring and running.outputs["checks"]["passed"]

    # Let it pass its end; the database keeps presenting it, and verify-full now refuses it.
    time.sleep(max(0.0, expiring.not_valid_after_utc.timestamp() - time.time() + 1))
    assert on_the_wire(running)["database"] == expiring
    assert expiring.not_valid_after_utc < datetime.datetime.now(datetime.timezone.utc)
    with pytest.raises(psycopg.OperationalError, match="certificate"):
        running.connect("dbcreds_probe", "not-a-password").close()

    lines: list[str] = []
    ops: dict[str, set[str]] = {}

    def event(e):
        if e.resource_pre_event and e.resource_pre_event.metadata.op.value not in ("same", "refresh"):
            ops.setdefault(e.resource_pre_event.metadata.urn.rsplit("::", 1)[1], set()).add(
                e.resource_pre_event.metadata.op.value)
    running._read(running.stack.up(refresh=True, on_output=lines.append, on_event=event).outputs)

    # Replaced, by the `up` alone: a new serial in the state and on the wire, valid now; the listener kept.
    renewed = in_state(running)
    assert renewed[DATABASE].serial_number != expiring.serial_number and ops.get(DATABASE), ops
    assert renewed[DATABASE].not_valid_after_utc > datetime.datetime.now(datetime.timezone.utc)
    assert on_the_wire(running) == {"database": renewed[DATABASE], "vault": listener}
    assert LISTENER not in ops, ops
    running.connect_as("reader").close()  # verify-full, against the database CA
    # Vault's PKI adds no certificate past its end to its CRL (its answer to the provider's revoke is a
    # warning): the expired one is not revoked, nor is the new one.
    assert revocation_time(running, expiring) == 0 and revocation_time(running, renewed[DATABASE]) == 0
    # The checks passed, and their report names what was done: the expired certificate and its successor.
    report = running.outputs["checks"]
    assert report["passed"], report
    database = report["certificates"]["database"]
    assert database["serial"] == vault_serial(renewed[DATABASE])
    assert database["replaced"] == {"serial": vault_serial(expiring), "expired": True,
                                    "not_after": f"{expiring.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"}
    assert "replaced" not in report["certificates"]["vault"]
    # So does the `up`'s output, in a line of its own.
    named = [line for line in lines if "database certificate replaced" in line]
    assert named and f"serial {vault_serial(expiring)} (expired at" in named[0], lines[-40:]
    assert f"-> serial {vault_serial(renewed[DATABASE])}" in named[0]
