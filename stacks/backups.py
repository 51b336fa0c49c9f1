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


class BackupError(RuntimeError):
    pass


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
        """The restore's steps, in order (`toolchain.backup_file.RestoreStep`s); `state` and `up` are
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
