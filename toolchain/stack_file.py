"""Runs a command on a stack while this checkout's `encryptionsalt` is in its stack file, and only then.

The passphrase secrets provider keeps a salt, made for this checkout's
passphrase (.pulumi/passphrase), in Pulumi.<stack>.yaml, and the CLI writes it
there the first time (rewriting the rest of the file too). Committed, it breaks
every other checkout ("incorrect passphrase"). So the salt lives in
.pulumi/salts/<stack>: this puts it in the stack file for the command, takes
it back out afterwards (keeping a salt the CLI made), and leaves the file's
bytes as they were.

  python3 -m toolchain.stack_file STACK -- COMMAND...
"""

import contextlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

from toolchain.env import ROOT

class StackFileError(LookupError):
    pass


SALT_LINE = re.compile(r"^encryptionsalt: *(\S+) *$", re.MULTILINE)


def salt_file(stack: str, root: Path = ROOT) -> Path:
    return root / ".pulumi" / "salts" / stack


@contextlib.contextmanager
def salted(stack: str, root: Path = ROOT) -> Iterator[None]:
    """This checkout's salt in Pulumi.<stack>.yaml for the duration; the file as it was afterwards."""
    stack_file, saved = root / f"Pulumi.{stack}.yaml", salt_file(stack, root)
    if not stack_file.exists():
        raise StackFileError(f"no stack file {stack_file.name}: the stack must be one of "
                                f"{', '.join(sorted(p.name[7:-5] for p in root.glob('Pulumi.*.yaml')))}")
    original = stack_file.read_text()
    found = SALT_LINE.search(original)
    if found:
        # Written by a command run outside make: it is this checkout's; keep it aside from now on.
        _save(saved, found.group(1))
        original = original[:found.start()] + original[found.end():].lstrip("\n")
    if saved.exists():
        stack_file.write_text(original.rstrip("\n") + f"\nencryptionsalt: {saved.read_text().strip()}\n")
    try:
        yield
    finally:
        found = SALT_LINE.search(stack_file.read_text())
        if found:
            _save(saved, found.group(1))
        stack_file.write_text(original)


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
    if len(args) < 3 or args[1] != "--":
        print("usage: python3 -m toolchain.stack_file STACK -- COMMAND...", file=sys.stderr)
        return 2
    return run(args[0], args[2:])


if __name__ == "__main__":
    sys.exit(main())
