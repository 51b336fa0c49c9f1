"""A single-node CockroachDB as a local process, secure mode (`--certs-dir`), on 127.0.0.1.

Runs `cockroach start-single-node` when a `cockroach` binary is on PATH (or at
$DBCREDS_COCKROACH). No package registry ships one, so this runs only where one is installed:
tests/integration/test_cockroach_live.py, skipped (and reported as skipped)
elsewhere. The stack administers the node as `root` with its client
certificate; the admin Vault uses gets a password, once.
"""

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import psycopg

from components.servers.process import running_pid, start_detached, terminate, wait_ready, write_file


def file_mode(name: str) -> int:
    """The mode a certs-directory file must have: CockroachDB refuses a key others can read."""
    return 0o600 if name.endswith(".key") else 0o644


class LocalCockroachError(RuntimeError):
    pass


def cockroach_binary() -> Path:
    """$DBCREDS_COCKROACH, or `cockroach` on PATH."""
    found = os.environ.get("DBCREDS_COCKROACH") or shutil.which("cockroach")
    if not found or not Path(found).exists():
        raise LocalCockroachError("no cockroach binary: put one on PATH or set DBCREDS_COCKROACH "
                                  "(none can be downloaded on this project's build machines)")
    return Path(found)


@dataclass(frozen=True)
class LocalCockroach:
    """One node: its data folder (certs and store) and ports."""

    data_dir: Path
    port: int
    http_port: int

    @property
    def certs_dir(self) -> Path:
        return self.data_dir / "certs"

    @property
    def _store(self) -> Path:
        return self.data_dir / "store"

    @property
    def _pid_file(self) -> Path:
        return self.data_dir / "cockroach.pid"

    def write_certs(self, files: dict[str, str]) -> None:
        """The certs directory: each file with the mode CockroachDB requires (keys 0600)."""
        self.certs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name, content in files.items():
            write_file(self.certs_dir / name, content, file_mode(name))

    def pid(self) -> int | None:
        return running_pid(self._pid_file, str(self._store))

    @property
    def running(self) -> bool:
        return self.pid() is not None

    def root_connection(self, dbname: str = "defaultdb") -> psycopg.Connection:
        """A verify-full TLS connection as root, authenticated by its client certificate."""
        return psycopg.connect(
            host="127.0.0.1", port=self.port, dbname=dbname, user="root", sslmode="verify-full",
            sslrootcert=str(self.certs_dir / "ca.crt"), sslcert=str(self.certs_dir / "client.root.crt"),
            sslkey=str(self.certs_dir / "client.root.key"), connect_timeout=5, autocommit=True,
        )

    def start(self) -> None:
        def ready():
            self.root_connection().close()

        what, log = f"CockroachDB on 127.0.0.1:{self.port}", self.data_dir / "server.log"
        if self.pid() is None:
            argv = [str(cockroach_binary()), "start-single-node", f"--certs-dir={self.certs_dir}",
                    f"--store={self._store}", f"--listen-addr=127.0.0.1:{self.port}",
                    f"--http-addr=127.0.0.1:{self.http_port}"]
            start_detached(argv, self._pid_file, log, ready, what, LocalCockroachError)
        else:
            wait_ready(ready, None, log, what, LocalCockroachError, still_running=lambda: self.running)

    def stop(self) -> None:
        terminate(self._pid_file, str(self._store))
