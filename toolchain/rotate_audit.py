"""`make rotate-audit STACK=… [KEEP=14]`: each of the stack's OpenBao nodes on this machine moves its
audit log aside (`audit/audit.log.<UTC time>`) and reopens it, losing no line; the KEEP newest moved
logs of each node are kept. Run it from cron or a systemd timer (daily, or when the file grows past
what the disk allows); ship the moved files before they age out.

Built for the local target; the docker and kubernetes targets' logs live on the servers' volumes and
are refused here, naming the target.

  python3 -m toolchain.rotate_audit STACK [KEEP]
"""

import sys
from pathlib import Path

from stacks import config as stack_settings
from components.servers.openbao import LocalOpenBaoError
from stacks import local_target
from toolchain.down import DownError, open_stack
from toolchain.env import ROOT, pulumi_env

#: Moved logs each node keeps unless told.
KEEP = 14


class RotateError(RuntimeError):
    pass


def rotate(name: str, env: dict[str, str], keep: int = KEEP, work_dir: Path = ROOT) -> list[Path]:
    """The moved logs, one per node that had lines to move."""
    config = stack_settings.of_stack(open_stack(name, env, work_dir), work_dir)
    if config.target.kind != "local":
        raise RotateError(f"stack {name!r} runs on the {config.target.kind} target: its audit log is rotated by "
                          "that target's own tooling (not built here); this rotates the local target's")
    moved = [node.rotate_audit_log(keep) for node in local_target.vault_nodes(config)]
    return [path for path in moved if path is not None]


def parse_keep(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise RotateError(f"KEEP={raw!r}: the number of moved logs to keep, a whole number of at least 1")
    return int(raw)


def main(argv: list[str]) -> int:
    try:
        keep = parse_keep(argv[1]) if len(argv) > 1 and argv[1] else KEEP
        for path in rotate(argv[0], pulumi_env(), keep):
            print(f"[rotate-audit] moved to {path}")
    except (RotateError, DownError, LocalOpenBaoError, stack_settings.ConfigError) as error:
        print(f"[rotate-audit] {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
