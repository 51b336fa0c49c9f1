"""The stack files (Pulumi.<stack>.yaml): which there are, their settings as Pulumi stores them (the one
reader of them: the policy gate, the tests and bootstrap.sh use it), and a command run on a stack while
this checkout's `encryptionsalt` is in its stack file, and only then.

The passphrase secrets provider keeps a salt, made for this checkout's
passphrase (.pulumi/passphrase), in Pulumi.<stack>.yaml, and the CLI writes it
there the first time (rewriting the rest of the file too). Committed, it breaks
every other checkout ("incorrect passphrase"). So the salt lives in
.pulumi/salts/<stack>: this puts it in the stack file for the command, takes
it back out afterwards (keeping a salt the CLI made), and leaves the file's
bytes as they were.

  python3 -m toolchain.stack_file STACK -- COMMAND...
  .venv/bin/python -m toolchain.stack_file STACK --setting NAME   (its value, or its default)

Reading settings needs yaml, the virtualenv's; running a command needs only the standard library
(make runs it with the machine's python3).
"""

import contextlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

from toolchain.env import ROOT

#: The Pulumi project whose settings the stack files hold (`dbcreds:<setting>`).
PROJECT = "dbcreds"


class StackFileError(LookupError):
    pass


SALT_LINE = re.compile(r"^encryptionsalt: *(\S+) *$", re.MULTILINE)


def salt_file(stack: str, root: Path = ROOT) -> Path:
    return root / ".pulumi" / "salts" / stack


def stacks_in_repository(root: Path = ROOT) -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def stack_file(stack: str, root: Path = ROOT) -> Path:
    """Pulumi.<stack>.yaml, or a StackFileError naming the stacks there are."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise StackFileError(f"no stack file {path.name}: the stack must be one of "
                             f"{', '.join(stacks_in_repository(root))}")
    return path


def file_values(stack: str, root: Path = ROOT) -> dict:
    """The stack file's settings by full key (`dbcreds:roles`), as written: a structured value as a
    list or dict."""
    import yaml  # Here, not above: a command is run by the machine's python3, which may have no yaml.

    return yaml.safe_load(stack_file(stack, root).read_text()).get("config") or {}


def stored_config(stack: str, root: Path = ROOT) -> dict[str, str]:
    """The stack file's settings by full key, as Pulumi stores them: text, a structured value as JSON."""
    return {key: value if isinstance(value, str) else json.dumps(value)
            for key, value in file_values(stack, root).items()}


def project_settings(stack: str, root: Path = ROOT) -> dict[str, str]:
    """The project's settings in the stack file, by setting name (`roles`), as Pulumi stores them."""
    prefix = f"{PROJECT}:"
    return {key.removeprefix(prefix): value for key, value in stored_config(stack, root).items()
            if key.startswith(prefix)}


def setting(stack: str, name: str, root: Path = ROOT) -> str:
    """One setting of the stack, as text: the stack file's, or its default (stacks/defaults.py)."""
    from stacks.defaults import DEFAULTS

    value = project_settings(stack, root).get(name, DEFAULTS.get(name, ""))
    return value if isinstance(value, str) else json.dumps(value)


@contextlib.contextmanager
def salted(stack: str, root: Path = ROOT) -> Iterator[None]:
    """This checkout's salt in Pulumi.<stack>.yaml for the duration; the file as it was afterwards."""
    path, saved = stack_file(stack, root), salt_file(stack, root)
    original = path.read_text()
    found = SALT_LINE.search(original)
    if found:
        # Written by a command run outside make: it is this checkout's; keep it aside from now on.
        _save(saved, found.group(1))
        original = original[:found.start()] + original[found.end():].lstrip("\n")
    if saved.exists():
        path.write_text(original.rstrip("\n") + f"\nencryptionsalt: {saved.read_text().strip()}\n")
    try:
        yield
    finally:
        found = SALT_LINE.search(path.read_text())
        if found:
            _save(saved, found.group(1))
        path.write_text(original)


def _save(saved: Path, salt: str) -> None:
    saved.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    saved.write_text(salt + "\n")


def run(stack: str, command: list[str], root: Path = ROOT) -> int:
    try:
        with salted(stack, root):
            return subprocess.run(command).returncode
    except StackFileError as error:
        print(error, file=sys.stderr)
        return 2


def main() -> int:
    args = sys.argv[1:]
    if len(args) == 3 and args[1] == "--setting":
        try:
            print(setting(args[0], args[2]))
            return 0
        except StackFileError as error:
            print(error, file=sys.stderr)
            return 2
    if len(args) < 3 or args[1] != "--":
        print("usage: python3 -m toolchain.stack_file STACK -- COMMAND...\n"
              "       python3 -m toolchain.stack_file STACK --setting NAME", file=sys.stderr)
        return 2
    return run(args[0], args[2:])


if __name__ == "__main__":
    sys.exit(main())
