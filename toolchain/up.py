"""`make up` and `make preview`: refresh first, so what was changed by hand is seen and put back.

A role's SQL, a client's policy or an AppRole role's TTLs edited through
Vault's API, or a group's grants changed in the database, differ from the
state only once the state is read back from the servers: `pulumi up
--refresh` reads them, and its update puts each back. The refresh runs the
program (`--run-program`), so the Vault provider reads through the node the
program picks (a cluster's node that serves now), not the one the state last
recorded. A refresh reads every Vault resource through Vault, so it fails
while no node serves or all are sealed (after a machine restart, say). Then a plain `up` comes first, to start and unseal the
servers from the state, and the `up --refresh` after it; a preview says it
cannot refresh and shows what the plain `up` would do.

  python3 -m toolchain.up STACK [--preview]
"""

import json
import socket
import subprocess
import sys
from typing import Any

import hvac

from components.servers.openbao import node_state
from components.servers.process import pem_file
from components.servers.server_running import NAME_SUFFIX
from stacks import docker_target, targets
from stacks.config import ConfigError
from toolchain.policy_gate import stack_config
from toolchain.stack_file import StackFileError

UP = ["up", "--yes", "--skip-preview"]
PREVIEW = ["preview", "--diff"]
#: The refresh reads each resource through its provider as the program configures it now, not as the
#: state recorded it: a cluster's Vault provider goes through a node that serves now.
REFRESH = ["--refresh", "--run-program"]


def say(message: str) -> None:
    print(f"[up] {message}", file=sys.stderr, flush=True)


def vault_answers(addresses: list[str], ca_pem: str) -> bool:
    """Whether Vault serves at one of addresses (a node up, initialised and unsealed: the active one or a
    standby, which forwards), by its health endpoint, no token."""
    with pem_file(ca_pem) as ca:
        return any(node_state(hvac.Client(url=a, token="", verify=ca, timeout=5)) in ("active", "standby")
                   for a in addresses)


def port_answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError:
        return False
    return True


def servers_down(outputs: dict[str, Any]) -> list[str]:
    """Which of the stack's servers do not answer at the addresses its outputs give."""
    down = []
    addresses = outputs.get("vault_addrs") or [outputs["vault_addr"]] if "vault_addr" in outputs else []
    if addresses and not vault_answers(addresses, outputs["vault_ca_pem"]):
        down.append(f"Vault at {', '.join(addresses)} (down or sealed)")
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
        return [base] if preview else [start, base + REFRESH]
    return [base + REFRESH]


def keeper_urns(stack: str) -> list[str]:
    """The URNs of the resources that keep the stack's servers running (`ServerRunning`; on the docker
    target `ContainerRunning` and `VaultUnsealed`)."""
    result = subprocess.run(["pulumi", "stack", "export", "--stack", stack], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"[up] ERROR: cannot read stack {stack}'s state: {result.stderr.strip()}")
    return keepers(json.loads(result.stdout)["deployment"].get("resources") or [])


def keepers(resources: list[dict[str, Any]]) -> list[str]:
    """The URNs of the keepers among a stack's resources (as `pulumi stack export` lists them)."""
    return [r["urn"] for r in resources
            if r["type"].startswith("pulumi-python:dynamic") and r["urn"].endswith(NAME_SUFFIX)]


def stack_outputs(stack: str) -> dict[str, Any]:
    """The stack's outputs (secrets masked: none is needed here)."""
    result = subprocess.run(["pulumi", "stack", "output", "--json", "--stack", stack], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"[up] ERROR: cannot read stack {stack}'s outputs: {result.stderr.strip()}")
    return json.loads(result.stdout or "{}")


def main() -> int:
    args = sys.argv[1:]
    if not args or len(args) > 2 or (len(args) == 2 and args[1] != "--preview"):
        print("usage: python3 -m toolchain.up STACK [--preview]", file=sys.stderr)
        return 2
    stack, preview = args[0], len(args) == 2
    try:
        config = stack_config(stack)
    except (ConfigError, OSError, StackFileError):
        # The program says what is wrong, naming the field; a stack of no stack file here (a test's,
        # whose project is a copy) is read by the program from its own folder.
        return run(stack, preview)
    # A docker stack's own engine: left running by up (its containers run in it), stopped after a
    # preview that started it.
    with docker_target.engine_running(config, keep=not preview) as started:
        if started:
            say(f"started the stack's Docker engine at {docker_target.engine(config).host}")
        # A target whose servers are not reached at its outputs' addresses (a cluster, which brings its
        # pods back itself): nothing to start before the refresh.
        return run(stack, preview, keeps_servers=targets.of(config).REACHED_AT_OUTPUTS)


def run(stack: str, preview: bool, keeps_servers: bool = True) -> int:
    outputs = stack_outputs(stack)
    down = servers_down(outputs) if outputs and keeps_servers else []
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
