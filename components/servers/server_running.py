"""That a local server's process runs (and that OpenBao is unsealed), checked at every preview and `up`.

A machine restart keeps the servers' data folders but not their processes; an
operator may seal Vault. This resource's diff finds the process gone (or Vault
sealed), and its update starts it again (and unseals it with the keys from the
state). It is apart from the server resource so that the server's outputs
(address, token, files) stay known in a preview: after a restart a preview
shows these resources to update, not everything built on the servers. What
needs a running server depends on this resource.
"""

from pathlib import Path
from typing import Any, Optional

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.servers.cockroach import LocalCockroach
from components.servers.openbao import LocalOpenBao, node_state, unseal, wait_unsealed
from components.servers.postgres import LocalPostgres

KINDS = ("openbao", "postgres", "cockroach")
#: A keeper's resource name ends with this (`make up` targets the keepers alone to start the servers).
NAME_SUFFIX = "-running"


def keeper_name(server: str) -> str:
    return f"{server}{NAME_SUFFIX}"


def _server(props: dict[str, Any]):
    data_dir, port = Path(props["data_dir"]), int(props["port"])
    if props["kind"] == "openbao":
        return LocalOpenBao(data_dir, port, int(props["second_port"]))
    if props["kind"] == "cockroach":
        return LocalCockroach(data_dir, port, int(props["second_port"]))
    return LocalPostgres(data_dir, port)


def healthy(props: dict[str, Any]) -> bool:
    server = _server(props)
    if isinstance(server, LocalOpenBao):
        # A cluster's standby serves too (it forwards to the active node).
        return server.pid() is not None and node_state(server.client(timeout=5)) in ("active", "standby")
    return server.running


def _ensure(props: dict[str, Any]) -> None:
    server = _server(props)
    server.start()
    if isinstance(server, LocalOpenBao):
        if props["unseal_keys"]:
            unseal(server.client(), props["unseal_keys"])
        else:
            # Auto-unseal: it unseals itself (and a node that lost its raft folder joins first).
            wait_unsealed(server.client())


class _ServerRunningProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        _ensure(props)
        return CreateResult(id_=props["data_dir"], outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=olds != news or not healthy(news), replaces=[])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        _ensure(news)
        return UpdateResult(outs=news)


class ServerRunning(Resource):
    """The server of `kind` in data_dir runs (the server resource itself stops it on delete).

    second_port: OpenBao's cluster port, CockroachDB's HTTP port. unseal_keys: OpenBao's Shamir keys
    (none: it unseals itself).
    """

    def __init__(self, name: str, kind: str, data_dir: pulumi.Input[str], port: pulumi.Input[int],
                 second_port: pulumi.Input[int] = 0, unseal_keys: pulumi.Input[list] = (),
                 opts: Optional[pulumi.ResourceOptions] = None):
        if kind not in KINDS:
            raise ValueError(f"server kind must be one of {', '.join(KINDS)}, got {kind!r}")
        props = {"kind": kind, "data_dir": data_dir, "port": port, "second_port": second_port,
                 "unseal_keys": pulumi.Output.secret(unseal_keys)}
        super().__init__(_ServerRunningProvider(), name, props, opts)
