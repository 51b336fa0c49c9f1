"""The stack's hand on an OpenBao server it reaches by address, wherever the server runs (a container,
a pod): its initialisation, and a keeper that unseals it whenever a restart left it sealed.

The local target's server does the same from its own resource (`components.local.providers.openbao_server`),
which also runs the process.
"""

import tempfile
from pathlib import Path
from typing import Any, Optional

import hvac
import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.servers.openbao import INIT_TIMEOUT_SECONDS, LocalOpenBao, initialize, is_active, unseal
from components.servers.process import wait_ready, write_file

#: The server's folder in a container or pod: the local target's layout under /openbao.
IN_CONTAINER = LocalOpenBao(Path("/openbao"), 0, 0)


def _client(address: str, ca_pem: str, timeout: int = 10) -> tuple[hvac.Client, Any]:
    ca = tempfile.NamedTemporaryFile("w", suffix=".pem")
    ca.write(ca_pem)
    ca.flush()
    return hvac.Client(url=address, verify=ca.name, timeout=timeout), ca


def _wait_answering(client: hvac.Client, address: str) -> None:
    def ready() -> None:
        client.sys.read_health_status(method="GET")

    wait_ready(ready, None, Path("/dev/null"), f"OpenBao at {address}", RuntimeError)


class _OpenBaoInitProvider(ResourceProvider):
    """Initialises the server in a new raft volume, and unseals it; a new container on the same
    volume (the image or the config changed) is unsealed with the keys from state."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        write_file(Path(props["ca_file"]), props["ca_pem"], 0o644)
        client, ca = _client(props["address"], props["ca_pem"], INIT_TIMEOUT_SECONDS)
        with ca:
            _wait_answering(client, props["address"])
            if client.sys.is_initialized():
                raise RuntimeError(f"OpenBao at {props['address']} is initialised already: its raft storage "
                                   f"{props['raft_volume']} holds a server whose keys are not in this stack's "
                                   "state (another stack's, or an initialisation interrupted before the state "
                                   "recorded it); start over with new storage: pulumi up --replace on the "
                                   "resource that holds it (the docker target's vault-raft Volume, the "
                                   "kubernetes target's vault-raft PersistentVolume)")
            root_token, keys = initialize(client, int(props["key_shares"]), int(props["key_threshold"]))
            unseal(client, keys)
        return CreateResult(id_=props["raft_volume"], outs={**props, "root_token": root_token, "unseal_keys": keys})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in ("raft_volume", "key_shares", "key_threshold") if olds.get(k) != news.get(k)]
        changed = [k for k in ("container_id", "ca_pem", "ca_file", "address") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(replaces or changed), replaces=replaces, delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        write_file(Path(news["ca_file"]), news["ca_pem"], 0o644)
        client, ca = _client(news["address"], news["ca_pem"])
        with ca:
            _wait_answering(client, news["address"])
            unseal(client, olds["unseal_keys"])
        return UpdateResult(outs={**news, "root_token": olds["root_token"], "unseal_keys": olds["unseal_keys"]})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        Path(props["ca_file"]).unlink(missing_ok=True)


class OpenBaoInit(Resource, module="dbcreds", name="OpenBaoInit"):
    """The initialisation of an OpenBao reached at `address`: its root token and unseal keys (secret).

    `raft_volume` names what holds its raft data (new storage: a new initialisation);
    `container_id` what runs it (a change: the new server is unsealed with the kept keys).
    `ca_file` is where `ca_pem` is written on this host, for the Vault provider."""

    root_token: pulumi.Output[str]
    unseal_keys: pulumi.Output[list]

    def __init__(self, name: str, address: pulumi.Input[str], ca_pem: pulumi.Input[str], ca_file: str,
                 raft_volume: pulumi.Input[str], container_id: pulumi.Input[str], key_shares: int,
                 key_threshold: int, opts: Optional[pulumi.ResourceOptions] = None):
        props = {"address": address, "ca_pem": ca_pem, "ca_file": ca_file, "raft_volume": raft_volume,
                 "container_id": container_id, "key_shares": key_shares, "key_threshold": key_threshold,
                 "root_token": None, "unseal_keys": None}
        super().__init__(_OpenBaoInitProvider(), name, props, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=["root_token", "unseal_keys"])))


class _UnsealedProvider(ResourceProvider):
    @staticmethod
    def _start(props: dict[str, Any]) -> None:
        if props.get("container"):
            from components.servers.containers import start_container

            start_container(props["host"], props["container"])

    @staticmethod
    def _runs(props: dict[str, Any]) -> bool:
        if not props.get("container"):
            return True
        from components.servers.containers import running

        return running(props["host"], props["container"])

    def _ensure(self, props: dict[str, Any]) -> None:
        self._start(props)
        client, ca = _client(props["address"], props["ca_pem"])
        with ca:
            _wait_answering(client, props["address"])
            unseal(client, props["unseal_keys"])

    def create(self, props: dict[str, Any]) -> CreateResult:
        self._ensure(props)
        return CreateResult(id_=props["address"], outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        if olds != news or not self._runs(news):
            return DiffResult(changes=True, replaces=[])
        client, ca = _client(news["address"], news["ca_pem"], timeout=5)
        with ca:
            return DiffResult(changes=not is_active(client), replaces=[])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._ensure(news)
        return UpdateResult(outs=news)


class VaultUnsealed(Resource, module="dbcreds", name="VaultUnsealed"):
    """The server at `address` answers and is unsealed: checked at every preview; unsealed with the
    keys when not (after waiting for it to answer). With a docker `container` (and its engine's
    `host`), the container is started first when it stopped; elsewhere (a StatefulSet's pod) whatever
    runs the server brings it back by itself."""

    def __init__(self, name: str, address: pulumi.Input[str], ca_pem: pulumi.Input[str],
                 unseal_keys: pulumi.Input[list], host: pulumi.Input[str] = "", container: pulumi.Input[str] = "",
                 opts: Optional[pulumi.ResourceOptions] = None):
        props = {"host": host, "container": container, "address": address, "ca_pem": ca_pem,
                 "unseal_keys": pulumi.Output.secret(unseal_keys)}
        super().__init__(_UnsealedProvider(), name, props, opts)
