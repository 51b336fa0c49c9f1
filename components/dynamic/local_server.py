"""What the dynamic providers of local server processes share."""

import shutil
import socket
from typing import Any, Callable, TypeVar

from pulumi.dynamic import CheckFailure, CheckResult, ResourceProvider


T = TypeVar("T")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


class LocalServerProvider(ResourceProvider):
    """A provider whose resource is a server process with a data folder (see `server`)."""

    #: Inputs that are ports the server binds on 127.0.0.1.
    port_inputs: tuple[str, ...] = ("port",)

    def preflight(self, props: dict[str, Any]) -> list[CheckFailure]:
        """Problems with props that no create could get past (a missing binary, say)."""
        return []

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """At preview, before anything is made: the ports are free (unless this server holds them)."""
        failures = self.preflight(news)
        for key in self.port_inputs:
            port = news.get(key)
            ours = olds.get(key) == port and self.server(olds).running if olds else False
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
        touched: it may hold another server's data.
        """
        server = self.server(props)
        if server.data_dir.exists() and any(server.data_dir.iterdir()):
            raise RuntimeError(f"data folder {server.data_dir} is not empty: it may hold another server's data; "
                               "remove it or choose another data_dir")
        try:
            return build(server)
        except BaseException:
            server.stop()
            shutil.rmtree(server.data_dir, ignore_errors=True)
            raise

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Stops the server and removes its data folder: nothing of it is left."""
        server = self.server(props)
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)
