"""Helpers for driving real stacks through the Automation API in tests."""

import contextlib
import shutil
import uuid
from pathlib import Path
from typing import Iterator

from pulumi import automation as auto

from tests.support.ports import free_ports
from toolchain.env import ROOT, pulumi_env
from toolchain.stack_file import stored_config

TOOLS = ROOT / ".tools"


def root_program(tmp_path: Path) -> Path:
    """A folder holding the platform program (it imports components and stacks from PYTHONPATH)."""
    program = tmp_path / "root-program"
    program.mkdir()
    shutil.copy(ROOT / "__main__.py", program)
    # The copy uses the checkout's virtualenv.
    settings = (ROOT / "Pulumi.yaml").read_text().replace("virtualenv: .venv", f"virtualenv: {ROOT / '.venv'}")
    (program / "Pulumi.yaml").write_text(settings)
    return program


def unique_stack_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def state_text(stack: auto.Stack) -> str:
    """The stack's state file on the file backend, as stored (secrets encrypted)."""
    backend = Path(stack.workspace.env_vars["PULUMI_BACKEND_URL"].removeprefix("file://"))
    project = stack.workspace.project_settings().name
    return (backend / ".pulumi" / "stacks" / project / f"{stack.name}.json").read_text()


@contextlib.contextmanager
def temporary_stack(program_dir: Path, tmp_path: Path, prefix: str) -> Iterator[auto.Stack]:
    """A new stack of a copy of program_dir, on a file backend under tmp_path.

    The stack is destroyed and removed afterwards, whatever the test did.
    """
    work_dir = tmp_path / "program"
    shutil.copytree(program_dir, work_dir)
    env = pulumi_env(tmp_path / "pulumi")
    Path(env["PULUMI_BACKEND_URL"].removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    stack = auto.create_stack(
        stack_name=unique_stack_name(prefix),
        work_dir=str(work_dir),
        opts=auto.LocalWorkspaceOptions(
            env_vars=env,
            pulumi_command=auto.PulumiCommand(root=str(TOOLS), skip_version_check=True),
        ),
    )
    try:
        yield stack
    finally:
        # The test may have taken it down itself (`make down` removes the stack).
        if stack.name in {s.name for s in stack.workspace.list_stacks()}:
            destroy(stack)
            stack.workspace.remove_stack(stack.name)


def destroy(stack: auto.Stack) -> None:
    """Destroys the stack through providers configured as the program configures them now (a cluster's
    Vault through a node that serves), or, when the program itself fails (a test left it so), as the
    state recorded them. A stack that was only previewed has nothing to destroy (a destroy that runs the
    program would register its components and providers, and the stack could not be removed)."""
    if not stack.export_stack().deployment.get("resources"):
        return
    try:
        stack.destroy(on_output=lambda _: None, run_program=True)
    except auto.CommandError:
        stack.destroy(on_output=lambda _: None)


def stack_file_config(stack: str) -> dict[str, auto.ConfigValue]:
    """The config of the checkout's Pulumi.<stack>.yaml, to set on a test stack of another name."""
    return {key: auto.ConfigValue(value) for key, value in stored_config(stack).items()}


def local_servers_config(data_dir: Path, keys: tuple[str, ...] = ("vault_port", "vault_cluster_port", "db_port",
                                                                 "db_http_port")) -> dict[str, auto.ConfigValue]:
    """A data folder and free ports (keys) for a test stack of servers on this host (the local or docker
    target), so it clashes with nothing here."""
    return {
        "dbcreds:data_dir": auto.ConfigValue(str(data_dir)),
        **{f"dbcreds:{key}": auto.ConfigValue(str(port)) for key, port in zip(keys, free_ports(len(keys)))},
    }


#: Resources that update at every `up` besides the checks: the reaper of expired dynamic users.
REAPER_TYPE = "pulumi-python:dynamic/dbcreds:ExpiredUsersReaped"


def reapers(stack: auto.Stack) -> int:
    """How many expired-users reapers the stack has (one on a root program's PostgreSQL stack)."""
    return len([r for r in stack.export_stack().deployment["resources"] if r["type"] == REAPER_TYPE])


def assert_only_the_checks_change(stack: auto.Stack) -> None:
    """A preview of a converged stack: the post-deploy checks and the expired users' reaper (they run at
    every update) and nothing else."""
    summary = stack.preview(on_output=lambda _: None).change_summary
    assert summary.get("update") == 1 + reapers(stack) and set(summary) <= {"same", "update"}, summary


def updates_only(stack: auto.Stack, count: int, op: str = "update") -> dict[str, int]:
    """The change summary of a preview that updates (or `op`s) `count` resources of the stack (the checks
    among them) and keeps the rest; an update also updates the expired users' reaper, as every one does."""
    # Default providers are not counted in a summary.
    total = len([r for r in stack.export_stack().deployment["resources"]
                 if not (r["type"].startswith("pulumi:providers:") and "::default" in r["urn"])])
    count += reapers(stack) if op == "update" else 0
    return {op: count, "same": total - count}


def make_down(stack: auto.Stack, capfd) -> str:
    """`make down`'s code (toolchain/down.py) on a test stack; what it said on stderr."""
    from toolchain import down

    capfd.readouterr()
    down.down(stack.name, stack.workspace.env_vars, Path(stack.workspace.work_dir))
    return capfd.readouterr().err


def resources(stack: auto.Stack) -> dict:
    """Every resource as the state holds it, by URN, its dependencies sorted (a run that registers
    the same resources may record them, and their dependencies, in another order).

    Default providers are left out: their recorded inputs mirror the stack's
    config, which each case changes on purpose, and the engine records them
    before a resource's check can fail.
    """
    found = {}
    for resource in stack.export_stack().deployment["resources"]:
        if resource["type"].startswith("pulumi:providers:"):
            continue
        resource["dependencies"] = sorted(resource.get("dependencies") or [])
        resource["propertyDependencies"] = {k: sorted(v) for k, v in
                                            (resource.get("propertyDependencies") or {}).items()}
        found[resource["urn"]] = resource
    return found
