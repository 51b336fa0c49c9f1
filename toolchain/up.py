"""`make up` and `make preview`: refresh first, so what was changed by hand is seen and put back.

A role's SQL, a client's policy or an AppRole role's TTLs edited through
Vault's API, or a group's grants changed in the database, differ from the
state only once the state is read back from the servers: `pulumi up
--refresh` reads them, and its update puts each back. A refresh reads every
Vault resource through Vault, so it fails while Vault is down or sealed (after
a machine restart, say). Then a plain `up` comes first, to start and unseal the
servers from the state, and the `up --refresh` after it; a preview says it
cannot refresh and shows what the plain `up` would do.

  python3 -m toolchain.up STACK [--preview]
"""

import json
import socket
import subprocess
import sys
import tempfile
from typing import Any

import hvac

from components.dynamic.server_running import NAME_SUFFIX

UP = ["up", "--yes", "--skip-preview"]
PREVIEW = ["preview", "--diff"]


def say(message: str) -> None:
    print(f"[up] {message}", file=sys.stderr, flush=True)


def vault_answers(addr: str, ca_pem: str) -> bool:
    """Whether Vault at addr is up, initialised and unsealed (its health endpoint, no token)."""
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as ca:
        ca.write(ca_pem)
        ca.flush()
        try:
            health = hvac.Client(url=addr, verify=ca.name, timeout=5).sys.read_health_status(method="GET")
        except Exception:  # noqa: BLE001 - unreachable or sealed (503), in any way, is the answer
            return False
    return isinstance(health, dict) and health.get("initialized") is True and health.get("sealed") is False


def port_answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError:
        return False
    return True


def servers_down(outputs: dict[str, Any]) -> list[str]:
    """Which of the stack's servers do not answer at the addresses its outputs give."""
    down = []
    if "vault_addr" in outputs and not vault_answers(outputs["vault_addr"], outputs["vault_ca_pem"]):
        down.append(f"Vault at {outputs['vault_addr']} (down or sealed)")
    if "db_port" in outputs and not port_answers(outputs["db_host"], int(outputs["db_port"])):
        down.append(f"the database at {outputs['db_host']}:{outputs['db_port']}")
    return down


def commands(stack: str, outputs: dict[str, Any], down: list[str], keepers: list[str],
             preview: bool) -> list[list[str]]:
    """The pulumi commands to run. A new stack has nothing to refresh; servers that do not answer
    cannot be refreshed through, so an up of their keepers (the URNs in keepers) goes first."""
    base = (PREVIEW if preview else UP) + ["--stack", stack]
    if not outputs:
        return [base]
    if down:
        start = base + [arg for urn in keepers for arg in ("--target", urn)]
        return [base] if preview else [start, base + ["--refresh"]]
    return [base + ["--refresh"]]


def keeper_urns(stack: str) -> list[str]:
    """The URNs of the resources that keep the stack's servers running (`ServerRunning`, and on the
    docker target `VaultUnsealed`)."""
    result = subprocess.run(["pulumi", "stack", "export", "--stack", stack], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"[up] ERROR: cannot read stack {stack}'s state: {result.stderr.strip()}")
    resources = json.loads(result.stdout)["deployment"].get("resources") or []
    return [r["urn"] for r in resources
            if r["type"].startswith("pulumi-python:dynamic") and r["urn"].endswith(NAME_SUFFIX)]


def stack_outputs(stack: str) -> dict[str, Any]:
    """The stack's outputs (secrets masked: none is needed here)."""
    result = subprocess.run(["pulumi", "stack", "output", "--json", "--stack", stack], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"[up] ERROR: cannot read stack {stack}'s outputs: {result.stderr.strip()}")
    return json.loads(result.stdout or "{}")


def start_docker_engine(stack: str) -> None:
    """A docker-target stack's own Docker engine, started unless it answers (its containers come back
    with it: their restart policy)."""
    from stacks import docker_target
    from stacks.config import ConfigError, validate_settings
    from toolchain.env import ROOT
    from toolchain.policy_gate import stack_file_settings

    try:
        config = validate_settings(stack_file_settings(stack), stack, ROOT)
    except (ConfigError, OSError):
        return  # The program itself says what is wrong, naming the field.
    if config.target == "docker" and docker_target.engine(config).ensure_running():
        say(f"started the stack's Docker engine at {docker_target.engine(config).host}")


def main() -> int:
    args = sys.argv[1:]
    if not args or len(args) > 2 or (len(args) == 2 and args[1] != "--preview"):
        print("usage: python3 -m toolchain.up STACK [--preview]", file=sys.stderr)
        return 2
    stack, preview = args[0], len(args) == 2
    if not preview:
        start_docker_engine(stack)
    outputs = stack_outputs(stack)
    down = servers_down(outputs) if outputs else []
    if down:
        say(f"{' and '.join(down)} does not answer: no refresh through it; "
            + ("this preview shows what starting it changes (make up starts it, then refreshes)" if preview
               else "an up of the servers' keepers starts it from the state, then an up with refresh"))
    keepers = keeper_urns(stack) if down and not preview else []
    for command in commands(stack, outputs, down, keepers, preview):
        say("pulumi " + " ".join(command))
        status = subprocess.run(["pulumi", *command]).returncode
        if status != 0:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
