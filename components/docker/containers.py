"""What every container of the docker target shares: its names, its hardening, and the keeper that
starts it again when it stopped."""

import json
import subprocess
import time
from typing import Any

import pulumi
import pulumi_docker as docker
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

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


def container_state(host: str, container: str) -> dict[str, Any]:
    """The container's state as the engine reports it ({} when it has no such container)."""
    result = subprocess.run(["docker", "--host", host, "inspect", "--format", "{{json .State}}", container],
                            capture_output=True, text=True)
    return json.loads(result.stdout) if result.returncode == 0 else {}


def start_container(host: str, container: str, timeout: float = 120) -> None:
    """Starts a stopped container (killed, or stopped by hand) and waits until it runs and, if it has
    a health check, is healthy."""
    state = container_state(host, container)
    if not state:
        raise RuntimeError(f"no container {container} in the engine at {host}: `pulumi up --refresh` makes it again")
    if not state.get("Running"):
        result = subprocess.run(["docker", "--host", host, "start", container], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"docker start {container} failed: {result.stderr.strip()}")
    deadline = time.monotonic() + timeout
    while True:
        state = container_state(host, container)
        health = (state.get("Health") or {}).get("Status", "healthy")
        if state.get("Running") and health == "healthy":
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"container {container} is not running and healthy after {timeout:.0f}s: {state}")
        time.sleep(0.5)


def running(host: str, container: str) -> bool:
    state = container_state(host, container)
    return bool(state.get("Running")) and (state.get("Health") or {}).get("Status", "healthy") == "healthy"


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
    `components.local.providers.server_running.keeper_name`, `make up` runs it first when the server is down."""

    def __init__(self, name: str, host: pulumi.Input[str], container: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(_ContainerRunningProvider(), name, {"host": host, "container": container}, opts)
