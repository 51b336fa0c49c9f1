"""A container of a Docker engine, as the keepers see it: its state, started again when it stopped.

The docker target's keepers (`components.docker.containers.ContainerRunning`)
and OpenBao's unseal keeper (`components.servers.openbao_api.VaultUnsealed`)
both use these.
"""

import json
import subprocess
import time
from typing import Any


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
