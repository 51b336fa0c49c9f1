"""The order and pace in which a cluster's OpenBao nodes move onto another release, whatever runs
them (the local target's processes, `components.local.providers.openbao_rollout`; the kubernetes
target's pods, `components.kubernetes.rollout`): one node at a time, the standbys first, each back
and the cluster healthy before the next; then the active node steps down, an upgraded standby takes
over, and it moves last. The node that writes moves last, as Vault advises for raft clusters.

Each target says how its nodes are read, stepped down and restarted (`RolloutNode`); `roll_nodes`
is the one sequence both run.
"""

import time
from typing import Protocol, Sequence

from components.servers.openbao import VOTER_SECONDS, LocalOpenBaoError
from components.servers.process import STARTUP_SECONDS


def rollout_order(states: dict[str, str]) -> list[str]:
    """The nodes (address: state) in the order they move: every node but the active one first, in the
    order given, then the active node."""
    return [a for a, state in states.items() if state != "active"] + [a for a, s in states.items() if s == "active"]


class RolloutNode(Protocol):
    """One node of a cluster being moved onto a release, as the rollout sees it (a local process, a pod)."""

    name: str

    def state(self) -> str:
        """As `components.servers.openbao.node_state` says it: active, standby, sealed, down, ..."""

    def current(self) -> bool:
        """Already on the target (or not answering: nothing to move yet)."""

    def step_down(self) -> None:
        """Asks the active node to give up leadership."""

    def restart(self) -> None:
        """Restarts it on the target; returns once it is back, unsealed, on the target release."""

    def rejoined(self) -> bool:
        """The cluster is healthy again with this node in it (a voter, caught up)."""


def _wait(condition, what: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise LocalOpenBaoError(f"{what} within {seconds:.0f}s")
        time.sleep(0.5)


def roll_nodes(nodes: Sequence[RolloutNode], release: str) -> list[str]:
    """Moves every node that is not current onto the target, one at a time: the standbys first, the
    active node (stepped down first, another taking over) last; each back and the cluster healthy
    before the next, and the other nodes serving before each restart. The names it restarted, in order."""
    by_name = {n.name: n for n in nodes}
    rolled: list[str] = []
    while behind := [n for n in nodes if n.name not in rolled and not n.current()]:
        # Read again each time: the active node may have changed while another one restarted.
        name = rollout_order({n.name: n.state() for n in behind})[0]
        node = by_name[name]
        others = [o for o in nodes if o is not node]
        if others:
            # Never two nodes down at once (a rollout cut short may have left one starting).
            _wait(lambda: all(o.state() in ("active", "standby") for o in others),
                  f"the other nodes of {name}'s cluster serving before its restart", VOTER_SECONDS)
        if others and node.state() == "active":
            node.step_down()
            _wait(lambda: any(o.state() == "active" for o in others),
                  f"no other node of {name}'s cluster became active after it stepped down", STARTUP_SECONDS)
        node.restart()
        if others:
            _wait(node.rejoined, f"the cluster was not healthy again after {name} restarted on {release}",
                  VOTER_SECONDS)
        rolled.append(name)
    return rolled
