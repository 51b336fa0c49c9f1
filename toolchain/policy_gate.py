"""`make policy`: the policy gate on every stack of the repository, as Pulumi users run it.

  python3 -m toolchain.policy_gate [STACK ...]     (default: every Pulumi.<stack>.yaml)

For each stack: its config is validated, the gate's config for it is written
from that (`stacks/config.py: policy_pack_config`, into .pulumi/policy/), and
`pulumi preview --policy-pack policies --policy-pack-config <file>` runs with
the real CLI and plugins. A stack that does not exist on this checkout's
backend yet is made for the preview and removed afterwards. Exits 1 when a
mandatory policy fails on any stack; the CLI's report names the policy and the
resource.
"""

import json
import sys
import time
from pathlib import Path

from pulumi import automation as auto

from stacks import docker_target
from stacks.config import ConfigError, StackConfig, policy_pack_config, validate_settings
from toolchain.env import ROOT, pulumi_env
from toolchain.stack_file import project_settings, salted, stacks_in_repository

POLICY_PACK = ROOT / "policies"


def stack_config(stack: str, root: Path = ROOT) -> StackConfig:
    return validate_settings(project_settings(stack, root), stack, root)


def pack_config(stack: str, root: Path = ROOT) -> dict:
    """The gate's config for the stack, from its validated config."""
    return policy_pack_config(stack_config(stack, root), stack)


def write_pack_config(stack: str, root: Path = ROOT) -> Path:
    path = root / ".pulumi" / "policy" / f"{stack}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(pack_config(stack, root), indent=2) + "\n")
    return path


def gate(stack_name: str, env: dict[str, str], root: Path = ROOT) -> bool:
    """Previews the stack under the gate; True when no mandatory policy failed."""
    pack_config = write_pack_config(stack_name, root)
    opts = auto.LocalWorkspaceOptions(env_vars=env, pulumi_command=auto.PulumiCommand(
        root=str(ROOT / ".tools"), skip_version_check=True))
    with salted(stack_name, root), docker_target.engine_running(stack_config(stack_name, root)):
        try:
            stack, made = auto.select_stack(stack_name, work_dir=str(root), opts=opts), False
        except auto.StackNotFoundError:
            stack, made = auto.create_stack(stack_name, work_dir=str(root), opts=opts), True
        try:
            stack.preview(policy_packs=[str(POLICY_PACK)], policy_pack_configs=[str(pack_config)],
                          on_output=print)
            return True
        except auto.CommandError:
            return False
        finally:
            if made:
                stack.workspace.remove_stack(stack_name, preserve_config=True)


def main() -> int:
    stacks = sys.argv[1:] or stacks_in_repository()
    env = pulumi_env()
    Path(env["PULUMI_BACKEND_URL"].removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    failed = []
    for stack in stacks:
        started = time.monotonic()
        print(f"[policy] {stack}: pulumi preview --policy-pack policies --policy-pack-config "
              f".pulumi/policy/{stack}.json", flush=True)
        try:
            passed = gate(stack, env)
        except ConfigError as error:
            print(f"[policy] {stack}: {error}", flush=True)
            passed = False
        print(f"[policy] {stack}: {'passed' if passed else 'FAILED'} in {time.monotonic() - started:.1f} s",
              flush=True)
        if not passed:
            failed.append(stack)
    if failed:
        print(f"[policy] the gate failed on: {', '.join(failed)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
