"""`make clean`: removes this checkout's virtualenv, tool links and Pulumi state (`.pulumi/`), but
not while a stack in that state still has resources, unless told (`make clean CONFIRM=yes`).

The state holds the only copy of each stack's Vault unseal (or recovery) keys and root token, and
`.pulumi/passphrase` the only key to them: `make down` first, or keep a copy (docs/operations.md).

  python3 -m toolchain.clean [yes]
"""

import json
import os
import shutil
import sys
from pathlib import Path

from toolchain.env import CHECKOUT_STATE, ROOT, passphrase_path, team_passphrase_file

REMOVED = (".venv", ".tools", ".pulumi")


def deployed_stacks(state: Path) -> list[str]:
    """The stacks of the file backend at `state` whose last checkpoint holds resources."""
    found = []
    for path in sorted((state / ".pulumi" / "stacks").glob("*/*.json")):
        latest = (json.loads(path.read_text()).get("checkpoint") or {}).get("latest") or {}
        if latest.get("resources"):
            found.append(f"{path.parent.name}/{path.stem} ({len(latest['resources'])} resources)")
    return found


def passphrase_goes_with_state(environ: dict[str, str]) -> bool:
    """Whether the passphrase in use is the checkout's own (deleted with .pulumi/), not a team's file."""
    return team_passphrase_file(environ) in (None, passphrase_path(CHECKOUT_STATE).resolve())


def main() -> int:
    confirmed = sys.argv[1:] == ["yes"]
    deployed = deployed_stacks(ROOT / ".pulumi" / "state")
    if deployed and not confirmed:
        print("[clean] refused: these stacks are still deployed, and .pulumi/ holds the only copy of their "
              f"Vault keys, root token and passphrase: {', '.join(deployed)}. `make down STACK=<stack>` each "
              "first, or `make clean CONFIRM=yes` to delete them anyway.", file=sys.stderr)
        return 1
    if passphrase_goes_with_state(dict(os.environ)):
        print("[clean] deleting .pulumi/passphrase too: stacks encrypted with it cannot be decrypted again",
              file=sys.stderr)
    for name in REMOVED:
        shutil.rmtree(ROOT / name, ignore_errors=True)
    print(f"[clean] removed {', '.join(REMOVED)}" + (f" (and the state of {', '.join(deployed)})" if deployed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
