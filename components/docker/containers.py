"""What every container of the docker target shares: its names, its hardening, and the keeper that
starts it again when it stopped."""

from typing import Any

import pulumi
import pulumi_docker as docker
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.servers.containers import running, start_container

#: Kept after a restart of the engine or the machine (an operator's `docker stop` is respected).
RESTART_POLICY = "unless-stopped"


def resource_name(component: str, part: str) -> str:
    """A container's or volume's name in the engine: the project, stack and component in it, so that
    two stacks or two instances can share one engine."""
    return f"{pulumi.get_project()}-{pulumi.get_stack()}-{component}-{part}"


def hardened(memory_mb: int, add_capabilities: tuple[str, ...] = ()) -> dict[str, Any]:
    """Container args: the host's network (the servers listen on 127.0.0.1 only), no capability
    beyond add_capabilities, no privilege gain, a small /tmp in memory, memory_mb of memory and no
    swap, restarted by the engine."""
    return {
        "network_mode": "host",
        # As the engine reports them (CAP_ names, sorted): a refresh then finds no change.
        "capabilities": docker.ContainerCapabilitiesArgs(
            drops=["ALL"], adds=sorted(f"CAP_{c.removeprefix('CAP_')}" for c in add_capabilities)),
        "memory": memory_mb,
        "memory_swap": memory_mb,
        "security_opts": ["no-new-privileges"],
        "privileged": False,
        "tmpfs": {"/tmp": "rw,noexec,nosuid,size=16m"},
        "restart": RESTART_POLICY,
        "must_run": True,
        "destroy_grace_seconds": 30,
    }


class _ContainerRunningProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        start_container(props["host"], props["container"])
        return CreateResult(id_=props["container"], outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=olds != news or not running(news["host"], news["container"]), replaces=[])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        start_container(news["host"], news["container"])
        return UpdateResult(outs=news)


class ContainerRunning(Resource, module="dbcreds", name="ContainerRunning"):
    """A container runs (and is healthy): checked at every preview, started when not (an operator's
    `docker stop` or `kill`, or a crash the restart policy gave up on). Named with
    `components.servers.server_running.keeper_name`, `make up` runs it first when the server is down."""

    def __init__(self, name: str, host: pulumi.Input[str], container: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(_ContainerRunningProvider(), name, {"host": host, "container": container}, opts)
