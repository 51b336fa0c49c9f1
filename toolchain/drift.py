"""`make drift`: whether a stack is still what its program and state say, for CI after `up`.

Refreshes from the servers and previews (`pulumi preview --refresh --run-program --json`), then
reads the plan: every step but those of the post-deploy checks and of the expired users' reaper
(both run at every update by design; the checks prove the stack whenever it changes) is drift, or a
change made to the program or its config and not applied. Exits 0 when nothing but those two would
change, 1 naming each resource and what differs otherwise, 2 when the stack cannot be read (nothing
deployed, or its servers down: `make up` first).

  python3 -m toolchain.drift STACK
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from stacks import config as stack_settings
from stacks import docker_target, targets
from toolchain.down import DownError, open_stack
from toolchain.env import ROOT
from toolchain.up import servers_down

#: The types that update at every `up`, whatever changed: the post-deploy checks, the reaper of
#: expired dynamic users that runs before them, and (external target) the read of the Vault's audit devices.
EVERY_UPDATE = ("pulumi-python:dynamic/dbcreds:PostDeployChecks", "pulumi-python:dynamic/dbcreds:InClusterChecks",
                "pulumi-python:dynamic/dbcreds:ExpiredUsersReaped", "pulumi-python:dynamic/dbcreds:VaultAuditDevices")
#: Steps that change nothing.
UNCHANGED = ("same", "read", "refresh")


def say(message: str) -> None:
    print(f"[drift] {message}", file=sys.stderr, flush=True)


def step_type(step: dict[str, Any]) -> str:
    state = step.get("newState") or step.get("oldState") or {}
    return state.get("type") or step["urn"].split("::")[2].split("$")[-1]


def drifted(plan: dict[str, Any]) -> list[str]:
    """Each step of a `pulumi preview --json` plan that changes something other than the checks, as
    `<op> <type> <name>: <what differs>`."""
    found = []
    for step in plan.get("steps") or []:
        if step.get("op") in UNCHANGED or step_type(step) in EVERY_UPDATE:
            continue
        what = sorted((step.get("detailedDiff") or {}).keys()) or step.get("diffReasons") or []
        name = step["urn"].rsplit("::", 1)[-1]
        found.append(f"{step['op']} {step_type(step)} {name}" + (f": {', '.join(what)}" if what else ""))
    return found


def drift(name: str, env: dict[str, str], work_dir: Path = ROOT) -> int:
    """The exit status of `make drift` on stack `name` of the program in work_dir; says why on stderr."""
    try:
        stack = open_stack(name, env, work_dir)
    except DownError:
        say(f"stack {name!r} does not exist on this checkout's backend: `make up STACK={name}` makes it")
        return 2
    outputs = {key: value.value for key, value in stack.outputs().items()}
    if not outputs:
        say(f"stack {name} has nothing deployed: `make up STACK={name}` first")
        return 2
    config = stack_settings.of_stack(stack, work_dir)
    with docker_target.engine_running(config, keep=False):
        # A cluster brings its pods back itself and is reached through a port-forward of the program's.
        down = servers_down(outputs) if targets.of(config).REACHED_AT_OUTPUTS else []
        if down:
            say(f"{' and '.join(down)} does not answer: the stack cannot be read; `make up STACK={name}` first")
            return 2
        command = ["pulumi", "preview", "--refresh", "--run-program", "--json", "--stack", name]
        say(" ".join(command))
        result = subprocess.run(command, capture_output=True, text=True, cwd=work_dir, env={**os.environ, **env})
    try:
        plan = json.loads(result.stdout)
    except json.JSONDecodeError:
        plan = None
    if result.returncode != 0 or plan is None:
        say(f"ERROR: the preview failed:\n{(result.stderr.strip() or result.stdout.strip())[-3000:]}")
        return 2
    changes = drifted(plan)
    for change in changes:
        say(f"drift: {change}")
    if changes:
        say(f"{len(changes)} resource(s) differ from the program: `make preview STACK={name}` shows how, "
            f"`make up STACK={name}` puts them back")
        return 1
    say(f"no drift: {len(plan.get('steps') or [])} resources, only the post-deploy checks and the reaper would run")
    return 0


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python3 -m toolchain.drift STACK", file=sys.stderr)
        return 2
    return drift(sys.argv[1], dict(os.environ))


if __name__ == "__main__":
    sys.exit(main())
