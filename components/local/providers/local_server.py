"""What the dynamic providers of local server processes share."""

import json
import os
import secrets
import shutil
import signal
import socket
from pathlib import Path
from typing import Any, Callable, TypeVar

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, DiffResult, Resource, ResourceProvider


T = TypeVar("T")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def creating_marker(data_dir: Path) -> Path:
    """A file beside the data folder, from the start of a create until the state records its result.

    The engine writes a create's result to the state only after the provider
    returns it: if `pulumi up` is killed in between (or mid-create), the state
    has a pending create and no outputs, so the server's root token or admin
    password are lost with it. The marker tells the next create that the folder
    and the process in it are that unrecorded work, safe to clear. The first
    `check` that gets the server back as recorded state removes the marker.

    It names the provider process that runs the create and a token of that
    create: a killed `pulumi` leaves its provider running as an orphan, still
    inside the create, and it must neither go on nor clean up after a newer one.
    """
    return data_dir.with_name(data_dir.name + ".creating")


def _read_marker(marker: Path) -> dict:
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):
        return {}


def _stop_orphaned_create(marker: Path) -> None:
    """Kills the provider process of an interrupted create if it still runs (it lost its engine)."""
    pid = _read_marker(marker).get("pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if b"pulumi.dynamic" in cmdline:
        os.kill(pid, signal.SIGKILL)


class LocalServerProvider(ResourceProvider):
    """A provider whose resource is a server process with a data folder (see `server`).

    A server declares what its inputs mean: which make another server (replaced,
    the old one deleted first: two cannot share the folder or the ports), which
    the running server takes only by restarting, and which it takes while it
    runs. An input in none of them (a password used once, at create) changes
    nothing.
    """

    #: Inputs that are ports the server binds on 127.0.0.1.
    port_inputs: tuple[str, ...] = ("port",)
    #: Inputs whose change makes another server.
    replace_inputs: tuple[str, ...] = ("data_dir",)
    #: Inputs the server takes by stopping and starting again (`update`).
    restart_inputs: tuple[str, ...] = ()
    #: Inputs the server takes while it runs (`update`).
    live_inputs: tuple[str, ...] = ()

    @staticmethod
    def changed(olds: dict[str, Any], news: dict[str, Any], inputs: tuple[str, ...]) -> list[str]:
        return [k for k in inputs if olds.get(k) != news.get(k)]

    def must_restart(self, olds: dict[str, Any], news: dict[str, Any]) -> bool:
        return bool(self.changed(olds, news, self.restart_inputs))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = self.changed(olds, news, self.replace_inputs)
        changed = self.changed(olds, news, self.restart_inputs + self.live_inputs)
        return DiffResult(changes=bool(replaces or changed), replaces=replaces, delete_before_replace=True)

    def preflight(self, props: dict[str, Any]) -> list[CheckFailure]:
        """Problems with props that no create could get past (a missing binary, say)."""
        return []

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """At preview, before anything is made: the ports are free (unless this server holds them)."""
        failures = self.preflight(news)
        if olds:
            creating_marker(self.server(olds).data_dir).unlink(missing_ok=True)
        interrupted = creating_marker(self.server(news).data_dir).exists()
        for key in self.port_inputs:
            port = news.get(key)
            ours = olds.get(key) == port and self.server(olds).running if olds else interrupted
            if isinstance(port, (int, float)) and not ours and port_in_use(int(port)):
                failures.append(CheckFailure(key, f"127.0.0.1:{int(port)} is already in use by another process"))
        return CheckResult(news, failures)

    @staticmethod
    def server(props: dict[str, Any]):
        """The server these props describe: it has `stop()` and `data_dir`."""
        raise NotImplementedError

    def create_fresh(self, props: dict[str, Any], build: Callable[[Any], T]) -> T:
        """Runs build(server) in an empty data folder; if it fails, stops the server and removes the folder.

        A failed create records nothing in the state, so a process left running
        would leak past `pulumi destroy`. A folder with data in it is never
        touched, unless its create never reached the state (`creating_marker`):
        that server's secrets were lost with it, so it could never be used, and
        it is cleared before starting again.
        """
        server = self.server(props)
        marker = creating_marker(server.data_dir)
        if marker.exists():
            _stop_orphaned_create(marker)
            self._remove(server)
        if server.data_dir.exists() and any(server.data_dir.iterdir()):
            raise RuntimeError(f"data folder {server.data_dir} is not empty: it may hold another server's data; "
                               "remove it or choose another data_dir")
        token = secrets.token_hex(8)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"pid": os.getpid(), "token": token}))
        try:
            return build(server)
        except BaseException:
            # Only our own work: a newer create may have taken the folder over.
            if _read_marker(marker).get("token") == token:
                self._remove(server)
            raise

    @staticmethod
    def _remove(server) -> None:
        server.stop()
        # The data folder may be a link to where the data really is (components.servers.postgres).
        shutil.rmtree(server.data_dir.resolve(), ignore_errors=True)
        if server.data_dir.is_symlink():
            server.data_dir.unlink()
        creating_marker(server.data_dir).unlink(missing_ok=True)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Stops the server and removes its data folder: nothing of it is left."""
        self._remove(self.server(props))


class LocalDatabaseServer(Resource):
    """What a local database server resource gives the stack: where it listens, and the admin Vault
    connects as, with the password it was made with (secret; Vault rotates it at once)."""

    host: pulumi.Output[str]
    port: pulumi.Output[int]
    database: pulumi.Output[str]
    admin: pulumi.Output[str]
    admin_password: pulumi.Output[str]
    #: Changes when the server, and so its bootstrap password, is new (its creation time).
    admin_password_version: pulumi.Output[int]
