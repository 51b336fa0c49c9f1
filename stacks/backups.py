"""Backing up and restoring a stack's servers, by target: the seam `make backup` and `make restore`
(toolchain/backup.py) go through.

Each target's module has `backups(config) -> ServerBackups` (stacks/targets.py). toolchain/backup.py
takes OpenBao's raft snapshot through the API and the state's export itself, wherever the servers
run; the target dumps the database, names what a restore would overwrite, and runs the restore's
server steps. A target whose servers are not backed up here raises BackupError saying why, in one line.

What every target that runs its own OpenBao shares is here too: the restored state's server outputs,
and the snapshot forced onto a fresh OpenBao and served with the backup's keys.
"""

import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import hvac

from components.servers.openbao import INIT_TIMEOUT_SECONDS, initialize, node_state, unseal, wait_active

#: The signature (key and value) of the object `pulumi stack export --show-secrets` wraps a secret's
#: plaintext in.
SECRET_SIGNATURE = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")


#: The parts of a backup a target's servers give and take back: OpenBao's raft snapshot and the
#: database's dump (`toolchain/backup_file.py` packs them with the state's export and a manifest).
RAFT_SNAPSHOT = "openbao-raft.snap"
DATABASE_DUMP = "postgres.sql"


class BackupError(RuntimeError):
    pass


@dataclass(frozen=True)
class RestoreStep:
    """One step of a restore: what it does, in words an operator reads."""

    name: str
    what: str


def restore_steps(nodes: int, seal: str, stop_first: bool) -> list[RestoreStep]:
    """What a restore does, in order, and why in that order:

    - nothing is touched until the file decrypted whole (a wrong passphrase, a damaged file: nothing
      changed); the servers it replaces are stopped first (FORCE=yes);
    - the state first: every server's inputs (certificates, ports, the seal's key) and OpenBao's
      original unseal or recovery keys are in it;
    - PostgreSQL before OpenBao: once unsealed, OpenBao revokes the leases that expired meanwhile, and
      their revocation SQL must find the users the dump brings back;
    - OpenBao's first node is started fresh with the restored state's config and seal, initialised
      with keys of its own (they live only in memory: the snapshot replaces them), and the snapshot
      restored onto it with snapshot-force; then the original keys unseal it (Shamir), or the seal's
      key from the state does (static);
    - a cluster's other nodes start empty and join the first one;
    - the stack's `up` last: its post-deploy checks prove the restored stack.
    """
    steps = [RestoreStep("stop", "stop the stack's servers and remove their data folders")] if stop_first else []
    steps += [
        RestoreStep("state", "import the state's export"),
        RestoreStep("postgres", "a fresh PostgreSQL data folder, loaded from the dump"),
        RestoreStep("openbao", "OpenBao's first node started fresh, its raft snapshot restored (snapshot-force)"),
        RestoreStep("unseal", "unsealed with the state's unseal keys" if seal == "shamir"
                    else "unsealed by its static seal's key from the state"),
    ]
    if nodes > 1:
        steps.append(RestoreStep("join", f"OpenBao's other {nodes - 1} node(s) started empty, joining the first"))
    steps.append(RestoreStep("up", "the stack's up (refresh, then the post-deploy checks)"))
    return steps


#: What psql says when it loads pg_dumpall's dump into a new cluster, and is no fault: the dump
#: creates the superuser, whom initdb made already (pg_dumpall says so in its source).
EXPECTED_LOAD_ERRORS = ('role "postgres" already exists',)


def unexpected_load_errors(psql_stderr: str) -> list[str]:
    """The errors psql reported while loading a dump, but those EXPECTED_LOAD_ERRORS."""
    errors = [line.split("ERROR:", 1)[1].strip() for line in psql_stderr.splitlines() if "ERROR:" in line]
    return [e for e in errors if e not in EXPECTED_LOAD_ERRORS]


@dataclass(frozen=True)
class Restored:
    """What a restore's server steps work from, once the state is imported."""

    #: The restored state's resources (`pulumi stack export --show-secrets`: secrets wrapped).
    resources: list[dict]
    #: The restored stack's outputs, plain values (the admin token among them).
    outputs: dict[str, Any]
    #: The decrypted backup's parts.
    parts: Path
    #: Runs the built `pulumi` in the stack's project folder (its args after `pulumi`); its stdout.
    pulumi: Callable[[list[str]], str]


class ServerBackups(ABC):
    """A target's servers, as a backup and a restore see them."""

    @abstractmethod
    def dump_database(self, outputs: dict[str, Any], target: Path) -> None:
        """The database's dump (`pg_dumpall`, as the superuser) into target."""

    @abstractmethod
    def running(self) -> list[str]:
        """The stack's servers that run, named."""

    @abstractmethod
    def data(self) -> list[str]:
        """Where the stack's servers keep data that is there, named."""

    @abstractmethod
    def steps(self, stop_first: bool) -> list:
        """The restore's steps, in order (`RestoreStep`s); `state` and `up` are
        toolchain/backup.py's, every other one `run`'s."""

    @abstractmethod
    def run(self, step: str, restored: Restored | None) -> None:
        """One of the restore's server steps (`stop` comes before the state: restored is None)."""


def unwrap_secrets(value: Any) -> Any:
    """A value of `pulumi stack export --show-secrets` with each secret's plaintext in its place."""
    if isinstance(value, dict):
        if value.get(SECRET_SIGNATURE[0]) == SECRET_SIGNATURE[1] and "plaintext" in value:
            return unwrap_secrets(json.loads(value["plaintext"]))
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def server_outputs(resources: list[dict], data_dir: Path, resource_type: str | None = None) -> dict[str, Any]:
    """The outputs (secrets in plaintext) of the server resource whose data folder is data_dir: the
    OpenBao or PostgreSQL server itself (it holds the certificates), not its keeper."""
    for resource in resources:
        outputs = unwrap_secrets(resource.get("outputs") or {})
        if (outputs.get("data_dir") == str(data_dir) and "cert_pem" in outputs
                and (resource_type is None or resource["type"] == resource_type)):
            return outputs
    raise BackupError(f"the restored state holds no server resource for {data_dir}: the backup is of another "
                      "layout (data_dir or ports changed since?)")


def outputs_of_type(resources: list[dict], resource_type: str) -> dict[str, Any]:
    """The outputs (secrets in plaintext) of the restored state's one resource of resource_type."""
    found = [r for r in resources if r["type"] == resource_type]
    if len(found) != 1:
        raise BackupError(f"the restored state holds {len(found)} {resource_type} resources, not one: the backup "
                          "is of another layout")
    return unwrap_secrets(found[0].get("outputs") or {})


def force_snapshot(client: hvac.Client, snapshot: Path, seal: str) -> None:
    """A fresh OpenBao initialised with keys of its own (for this moment only: the snapshot brings the
    original keyring and tokens back), and the snapshot forced onto it (snapshot-force)."""
    client.token, throwaway_keys = initialize(client, 1, 1, seal)
    if seal == "shamir":
        unseal(client, throwaway_keys)
    else:
        wait_active(client)
    with open(snapshot, "rb") as data:
        response = client.adapter.post("/v1/sys/storage/raft/snapshot-force", data=data, raise_exception=False)
    # hvac gives a 200's JSON body as a dict, any other answer as the response.
    status = getattr(response, "status_code", 200)
    if status >= 400:
        raise BackupError(f"OpenBao at {client.url} refused the snapshot: {status} {response.text[:500]}")


def _token_works(client: Callable[..., hvac.Client], token: str) -> bool:
    try:
        client(token).auth.token.lookup_self()
    except Exception:  # noqa: BLE001 - refused, sealed, or still restoring: not yet
        return False
    return True


def serve_restored(client: Callable[..., hvac.Client], admin_token: str, unseal_keys: list[str], seal: str,
                   where: str) -> None:
    """Waits until the OpenBao that `client(token)` reaches serves the snapshot's storage: the backup's
    admin token works. OpenBao restores a forced snapshot after it answered: with Shamir keys it then
    seals itself (its keyring is the original's, which only the original keys open); the static seal's
    node opens it with the seal's key its config has."""
    deadline = time.monotonic() + INIT_TIMEOUT_SECONDS
    while not _token_works(client, admin_token):
        state = node_state(client(""))
        if state == "sealed" and seal == "shamir":
            unseal(client(""), unseal_keys)
        if time.monotonic() > deadline:
            raise BackupError(f"OpenBao at {where} does not serve the backup's storage {INIT_TIMEOUT_SECONDS} s "
                              f"after the snapshot was sent ({state}): the backup's admin token is refused")
        time.sleep(0.5)
    wait_active(client(""))
