"""`make rotate-audit STACK=… [KEEP=14]`: each of the stack's OpenBao servers moves its audit log aside
(`audit.log.<UTC time>` beside it) and reopens it, losing no line; the KEEP newest moved logs of each
are kept. Run it from cron or a systemd timer (daily, or when the file grows past what the disk
allows); ship the moved files before they age out.

What each target does is its module's `rotate_audit` (stacks/targets.py): the local target's nodes and
the docker target's container, and the kubernetes target's pods (each pod's audit-rotator sidecar) rotate;
the external target refuses, saying why.

  python3 -m toolchain.rotate_audit STACK [KEEP]
"""

import sys
from pathlib import Path

from components.docker.daemon import DockerEngineError
from components.servers.openbao import AuditRotationError, LocalOpenBaoError
from stacks import config as stack_settings
from stacks import targets
from toolchain.down import DownError, open_stack
from toolchain.env import ROOT, pulumi_env

#: Moved logs each server keeps unless told.
KEEP = 14


class RotateError(RuntimeError):
    pass


def rotate(name: str, env: dict[str, str], keep: int = KEEP, work_dir: Path = ROOT) -> list[str]:
    """The moved logs, named, one per server that had lines to move."""
    config = stack_settings.of_stack(open_stack(name, env, work_dir), work_dir)
    return targets.of(config).rotate_audit(config, keep)


def parse_keep(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise RotateError(f"KEEP={raw!r}: the number of moved logs to keep, a whole number of at least 1")
    return int(raw)


def main(argv: list[str]) -> int:
    try:
        keep = parse_keep(argv[1]) if len(argv) > 1 and argv[1] else KEEP
        for path in rotate(argv[0], pulumi_env(), keep):
            print(f"[rotate-audit] moved to {path}")
    except (RotateError, DownError, AuditRotationError, LocalOpenBaoError, DockerEngineError,
            stack_settings.ConfigError) as error:
        print(f"[rotate-audit] {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
