"""Faults on a running dev stack: after each, the next `up` converges with nothing lost.

One stack serves the faults that leave it up; an interrupted first `up` has a
stack of its own.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import hvac
import psycopg
import pytest
from pulumi import automation as auto

from tests.automation import (
    assert_only_the_checks_change,
    local_servers_config,
    root_program,
    temporary_stack,
    updates_only,
)
from tests.support.processes import processes_naming, remove_data_dir
from tests.support.vault_kv import enable_kv_v2
from toolchain.env import ROOT
from toolchain.recover import orphaned_plugins, recover

ROLES = {
    "reader": {"privileges": ["SELECT"], "schemas": ["public"], "default_ttl": "1h", "max_ttl": "2h"},
    "app": {"privileges": ["SELECT", "INSERT"], "tables": ["public.users", "public.orders"], "max_ttl": "2h"},
}
GRANTS = {
    "dbcreds_group_reader": {("users", "SELECT"), ("orders", "SELECT")},
    "dbcreds_group_app": {(t, p) for t in ("users", "orders") for p in ("SELECT", "INSERT")},
}


def quiet(_line: str) -> None:
    """Keeps engine output out of the test log."""


def configure(stack, data_dir: Path) -> None:
    stack.set_config("dbcreds:roles", auto.ConfigValue(json.dumps(ROLES)), path=False)
    stack.set_all_config(local_servers_config(data_dir))


def new_data_dir(prefix: str) -> Path:
    """Under the checkout: PostgreSQL's system user cannot enter pytest's private tmp folders."""
    return ROOT / ".data" / "tests" / f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """(stack, data_dir, outputs) of a stack that is up."""
    tmp_path = tmp_path_factory.mktemp("faults")
    data_dir = new_data_dir("faults")
    try:
        with temporary_stack(root_program(tmp_path), tmp_path, "faults") as stack:
            configure(stack, data_dir)
            outputs = stack.up(on_output=quiet).outputs
            yield stack, data_dir, outputs
    finally:
        remove_data_dir(data_dir)


def superuser(data_dir: Path, port: int) -> psycopg.Connection:
    return psycopg.connect(f"host={data_dir / 'postgres'} port={port} user=postgres dbname=app", autocommit=True)


def group_grants(data_dir: Path, port: int) -> dict[str, set[tuple[str, str]]]:
    with superuser(data_dir, port) as conn:
        rows = conn.execute(
            "SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee LIKE 'dbcreds\\_group\\_%'").fetchall()
    grants: dict[str, set] = {}
    for grantee, table, privilege in rows:
        grants.setdefault(grantee, set()).add((table, privilege))
    return grants


def vault(outputs, tmp_path) -> hvac.Client:
    ca_file = tmp_path / "vault-ca.pem"
    ca_file.write_text(outputs["vault_ca_pem"].value)
    return hvac.Client(url=outputs["vault_addr"].value, token=outputs["vault_admin_token"].value,
                       verify=str(ca_file), timeout=10)


def pids_naming(*folders: Path) -> list[int]:
    """Live processes whose command line names one of folders."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue
        if any(str(folder) in cmdline for folder in folders) and alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def session_members(session: int) -> list[int]:
    """Live processes of a session (a `pulumi up` started in a session of its own: its CLI, program and
    provider plugins, which stay in it when the run is killed)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[3]) == session and alive(int(proc.name)):
                found.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def kill(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def assert_converged(stack, data_dir, outputs, tmp_path) -> None:
    assert_only_the_checks_change(stack)
    client = vault(outputs, tmp_path)
    assert not client.sys.is_sealed() and client.is_authenticated()
    assert group_grants(data_dir, outputs["db_port"].value) == GRANTS


def test_sealed_vault_is_unsealed_by_the_next_up(running, tmp_path):
    stack, data_dir, outputs = running
    client = vault(outputs, tmp_path)
    enable_kv_v2(client, "kv-faults")
    client.secrets.kv.v2.create_or_update_secret("kept", secret={"v": "1"}, mount_point="kv-faults")
    client.sys.seal()
    assert client.sys.is_sealed()
    # What keeps Vault running and unsealed (and the checks): nothing built on it.
    assert stack.preview(on_output=quiet).change_summary == updates_only(stack, 2)
    stack.up(on_output=quiet)
    assert client.secrets.kv.v2.read_secret_version("kept", mount_point="kv-faults",
                                                     raise_on_deleted_version=True)["data"]["data"] == {"v": "1"}
    assert_converged(stack, data_dir, outputs, tmp_path)


def test_dropped_group_role_is_made_again(running, tmp_path):
    stack, data_dir, outputs = running
    with superuser(data_dir, outputs["db_port"].value) as conn:
        conn.execute("DROP OWNED BY dbcreds_group_reader")
        conn.execute("DROP ROLE dbcreds_group_reader")
    # One `up` with refresh, as `make up` runs it: the refresh finds the role gone, the update makes it.
    stack.up(on_output=quiet, refresh=True)
    assert_converged(stack, data_dir, outputs, tmp_path)


def test_grants_changed_by_hand_are_put_back(running, tmp_path):
    stack, data_dir, outputs = running
    with superuser(data_dir, outputs["db_port"].value) as conn:
        conn.execute("GRANT DELETE, UPDATE ON public.users TO dbcreds_group_reader")
        conn.execute("REVOKE INSERT ON public.orders FROM dbcreds_group_app")
    # Without a refresh the state still says all is well: the drift is found by refresh.
    stack.refresh(on_output=quiet)
    assert stack.preview(on_output=quiet).change_summary == updates_only(stack, 3)
    stack.up(on_output=quiet)
    assert_converged(stack, data_dir, outputs, tmp_path)


def test_postgres_down_and_its_port_taken_fails_clearly_then_recovers(running, tmp_path):
    stack, data_dir, outputs = running
    port = outputs["db_port"].value
    pid = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    time.sleep(1)
    # Another process took the port while the server was down.
    intruder = subprocess.Popen(["python3", "-c", f"""
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", {port})); s.listen(); time.sleep(600)"""])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        with pytest.raises(auto.CommandError, match=f"port.*127.0.0.1:{port} is already in use"):
            stack.up(on_output=quiet)
    finally:
        intruder.kill()
        intruder.wait()
    stack.up(on_output=quiet)
    assert_converged(stack, data_dir, outputs, tmp_path)


@pytest.mark.parametrize("moment", ["once the up holds the lock", "once the role's update began"])
def test_vault_killed_during_up(running, tmp_path, moment):
    """Vault killed while an up applies a role change. Killed as the up starts, its keeper's diff finds
    it dead and starts it again: that up converges. Killed once the role's update began (after the
    keeper looked), that update fails, naming Vault's address. The next up converges either way."""
    stack, data_dir, outputs = running
    pid = int((data_dir / "openbao" / "bao.pid").read_text())
    vault_port = outputs["vault_addr"].value.rsplit(":", 1)[1]
    changed = {**ROLES, "reader": {**ROLES["reader"], "max_ttl": "90m"}}
    stack.set_config("dbcreds:roles", auto.ConfigValue(json.dumps(changed)), path=False)
    locks = Path(stack.workspace.env_vars["PULUMI_BACKEND_URL"].removeprefix("file://")) / ".pulumi" / "locks"
    output: list[str] = []
    killed: dict = {}

    def time_to_kill() -> bool:
        if moment == "once the up holds the lock":
            return any(locks.rglob("*.json"))
        return any("engine-role-reader updating" in line for line in output)

    def kill_at_the_moment():
        deadline = time.monotonic() + 120
        while not time_to_kill() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(pid, signal.SIGKILL)
        killed["at"] = time.monotonic()
        # The up still holds its lock: it had not finished when Vault died.
        killed["locked"] = any(locks.rglob("*.json"))

    killer = threading.Thread(target=kill_at_the_moment)
    started = time.monotonic()
    killer.start()
    try:
        stack.up(on_output=output.append)
        failure = None
    except auto.CommandError as error:
        failure = str(error)
    finally:
        ended = time.monotonic()
        killer.join()
        stack.set_config("dbcreds:roles", auto.ConfigValue(json.dumps(ROLES)), path=False)
    assert started < killed["at"] < ended and killed["locked"]
    assert not alive(pid)
    if moment == "once the up holds the lock":
        assert failure is None
        assert any("vault-running updated" in line for line in output), output[-20:]
    else:
        # The role's own update failed: the Vault provider could not reach Vault's address.
        assert failure is not None and "engine-role-reader **updating failed**" in failure, output[-20:]
        assert f"dial tcp 127.0.0.1:{vault_port}: connect: connection refused" in failure, failure[-2000:]
    stack.up(on_output=quiet)
    assert_converged(stack, data_dir, outputs, tmp_path)


def test_up_killed_mid_create_is_finished_by_the_next_up(tmp_path):
    data_dir = new_data_dir("killed")
    # PostgreSQL is given its data folder itself: data_dir's, or (from a folder its account cannot
    # enter, a private home's clone) the one data_dir links to (known once the killed up made it).
    pgdata = data_dir / "postgres"
    up = None
    finished = False
    try:
        with temporary_stack(root_program(tmp_path), tmp_path, "killed") as stack:
            try:
                configure(stack, data_dir)
                env = {**os.environ, **stack.workspace.env_vars}
                up = subprocess.Popen(
                    [str(ROOT / ".tools" / "bin" / "pulumi"), "up", "--yes", "--skip-preview", "--non-interactive",
                     "--stack", stack.name],
                    cwd=stack.workspace.work_dir, env=env, start_new_session=True,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
                # Kill the CLI, the program and the providers once OpenBao is starting.
                deadline = time.monotonic() + 60
                while not (data_dir / "openbao" / "bao.pid").exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(0.5)
                os.killpg(up.pid, signal.SIGKILL)
                up.wait()
                pgdata = pgdata.resolve()
                pending = stack.export_stack().deployment.get("pending_operations") or []
                assert pending, "the kill came too late to leave an operation pending"
                # The killed run's provider lives on as an orphan, still inside its create.
                orphan = json.loads((data_dir / "openbao.creating").read_text())["pid"]
                assert alive(orphan)

                # Its provider plugins (pulumi-tls, pulumi-random) live on too, their engine gone.
                assert orphaned_plugins(stack.workspace.env_vars["PULUMI_HOME"])
                # What `make up` does: the lock of the killed run is removed, its pending creates dropped,
                # its orphaned plugins stopped, then up.
                assert recover(stack.name, stack.workspace.env_vars, Path(stack.workspace.work_dir))
                time.sleep(1)
                assert orphaned_plugins(stack.workspace.env_vars["PULUMI_HOME"]) == []
                outputs = stack.up(on_output=quiet).outputs
                assert not stack.export_stack().deployment.get("pending_operations")
                # The orphan is stopped; one server of each runs, the interrupted ones stopped.
                assert not alive(orphan)
                assert len([c for c in processes_naming(data_dir) if "bao server" in c]) == 1
                assert len([c for c in processes_naming(pgdata)
                            if c.startswith(("/usr/lib/postgresql", "postgres -D"))]) == 1
                assert_converged(stack, data_dir, outputs, tmp_path)
                finished = True
            finally:
                if not finished and up is not None:
                    # A failure (before the recovery above, say): what is left of the killed run (its
                    # orphaned provider and plugins, still in its session) is stopped, and its lock and
                    # pending creates cleared, so that the stack's destroy can run.
                    kill(session_members(up.pid))
                    with contextlib.suppress(Exception):
                        recover(stack.name, stack.workspace.env_vars, Path(stack.workspace.work_dir))
        # The stack's destroy stopped every server of it.
        assert processes_naming(data_dir) == [] and processes_naming(pgdata) == []
    finally:
        # Whatever a failed run left running (a server the killed up started that no state records).
        kill(pids_naming(data_dir, pgdata))
        remove_data_dir(data_dir)
