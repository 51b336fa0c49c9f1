"""The platform program through the Automation API, with the real engine, servers and state.

What the dev stack holds so far: the bootstrap PKI, a real OpenBao server (raft,
TLS, audit device) initialised and unsealed by the stack, and a real PostgreSQL
(TLS and SCRAM only) with its admin, database and demo schema.
"""

import json
import os
import shutil
import signal
import time
import uuid

import hvac
import psycopg
import pytest
import requests
from pulumi import automation as auto

from tests.automation import local_servers_config, root_program, state_text, temporary_stack
from toolchain.env import ROOT


def quiet(_line: str) -> None:
    """Keeps engine output out of the test log."""


@pytest.fixture
def data_dir():
    """Under the checkout: PostgreSQL's system user cannot enter pytest's private tmp folders."""
    path = ROOT / ".data" / "tests" / f"dev-{uuid.uuid4().hex[:8]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


ROLES = {
    "reader": {"privileges": ["SELECT"], "schemas": ["public"], "default_ttl": "1h", "max_ttl": "2h"},
    "app": {"privileges": ["SELECT", "INSERT"], "tables": ["public.users", "public.orders"], "max_ttl": "2h"},
}


def set_roles(stack, roles) -> None:
    stack.set_config("dbcreds:roles", auto.ConfigValue(json.dumps(roles)), path=False)


@pytest.fixture
def stack(tmp_path, data_dir):
    with temporary_stack(root_program(tmp_path), tmp_path, "dev-it") as stack:
        set_roles(stack, ROLES)
        stack.set_all_config(local_servers_config(data_dir))
        yield stack


def vault_client(outputs, tmp_path) -> hvac.Client:
    ca_file = tmp_path / "vault-ca.pem"
    ca_file.write_text(outputs["vault_ca_pem"].value)
    return hvac.Client(url=outputs["vault_addr"].value, token=outputs["vault_admin_token"].value,
                       verify=str(ca_file), timeout=10)


def admin_bootstrap_password(stack) -> str:
    """Read from the decrypted state: the stack exports no bootstrap password."""
    (server,) = [r for r in stack.export_stack().deployment["resources"] if r["urn"].endswith("::db-postgres")]
    return server["outputs"]["admin_password"]["plaintext"].strip('"')


def connect(outputs, tmp_path, user: str, password: str, sslmode: str = "verify-full"):
    ca_file = tmp_path / "db-ca.pem"
    ca_file.write_text(outputs["db_ca_pem"].value)
    return psycopg.connect(
        host=outputs["db_host"].value, port=outputs["db_port"].value, dbname=outputs["db_name"].value,
        user=user, password=password, sslmode=sslmode, sslrootcert=str(ca_file), connect_timeout=10,
    )


def check_database(outputs, tmp_path, password: str) -> None:
    with connect(outputs, tmp_path, "dbcreds_admin", password) as conn:
        assert conn.execute("SELECT count(*) FROM public.users").fetchone()[0] == 3
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]
        superuser, createrole = conn.execute(
            "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user").fetchone()
        assert (superuser, createrole) == (False, True)


def table_privileges(data_dir, port) -> dict[str, set[tuple[str, str]]]:
    """Each group role's table privileges, read as the superuser over the socket."""
    dsn = f"host={data_dir / 'postgres'} port={port} user=postgres dbname=app"
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee LIKE 'dbcreds\\_group\\_%'"
        ).fetchall()
    grants: dict[str, set[tuple[str, str]]] = {}
    for grantee, table, privilege in rows:
        grants.setdefault(grantee, set()).add((table, privilege))
    return grants


def test_dev_stack_lifecycle(stack, tmp_path, data_dir):
    outputs = stack.up(on_output=quiet).outputs
    assert outputs["db_engine"].value == "postgresql" and isinstance(outputs["db_port"].value, int)
    assert outputs["vault_admin_token"].secret
    vault = vault_client(outputs, tmp_path)
    assert vault.sys.is_initialized() and not vault.sys.is_sealed() and vault.is_authenticated()
    devices = vault.sys.list_enabled_audit_devices()["data"]
    assert devices["file/"]["options"]["file_path"] == outputs["vault_audit_log"].value
    vault.sys.enable_secrets_engine("kv", path="kv", options={"version": "2"})
    vault.secrets.kv.v2.create_or_update_secret("probe", secret={"kept": "yes"}, mount_point="kv")

    # TLS only: a plaintext request to the listener is not served.
    plain = requests.get(outputs["vault_addr"].value.replace("https://", "http://") + "/v1/sys/health", timeout=5)
    assert plain.status_code == 400

    # Root token and unseal keys are in the state only as ciphertext.
    assert vault.token not in state_text(stack)

    password = admin_bootstrap_password(stack)
    check_database(outputs, tmp_path, password)
    # TLS only, and no superuser over TCP.
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        connect(outputs, tmp_path, "dbcreds_admin", password, sslmode="disable")
    with pytest.raises(psycopg.OperationalError, match="rejects connection"):
        connect(outputs, tmp_path, "postgres", password)
    assert password not in state_text(stack)

    port = outputs["db_port"].value
    assert outputs["db_group_roles"].value == {"reader": "dbcreds_group_reader", "app": "dbcreds_group_app"}
    assert table_privileges(data_dir, port) == {
        "dbcreds_group_reader": {("users", "SELECT"), ("orders", "SELECT")},
        "dbcreds_group_app": {(t, p) for t in ("users", "orders") for p in ("SELECT", "INSERT")},
    }

    stack.preview(on_output=quiet, expect_no_changes=True)

    # A narrowed spec and a removed role: the grants follow the config.
    set_roles(stack, {"app": {"privileges": ["SELECT"], "tables": ["public.users"], "max_ttl": "2h"}})
    stack.up(on_output=quiet)
    assert table_privileges(data_dir, port) == {"dbcreds_group_app": {("users", "SELECT")}}
    set_roles(stack, ROLES)
    stack.up(on_output=quiet)

    # A machine restart: the processes are gone, the data folders stay.
    os.kill(int((data_dir / "openbao" / "bao.pid").read_text()), signal.SIGKILL)
    postmaster = (data_dir / "postgres" / "postmaster.pid").read_text().split()[0]
    os.kill(int(postmaster), signal.SIGKILL)
    time.sleep(1)
    assert stack.preview(on_output=quiet).change_summary.get("update") == 2
    stack.up(on_output=quiet)
    check_database(outputs, tmp_path, password)
    assert not vault.sys.is_sealed()
    read = vault.secrets.kv.v2.read_secret_version("probe", mount_point="kv", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"kept": "yes"}
    # The audit device logs every request, with the token hashed.
    audit = (data_dir / "openbao" / "audit" / "audit.log").read_text()
    assert '"path":"kv/data/probe"' in audit and vault.token not in audit

    stack.destroy(on_output=quiet)
    assert not (data_dir / "openbao").exists()
    assert not (data_dir / "postgres").exists()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(outputs["vault_addr"].value + "/v1/sys/health", verify=False, timeout=5)
