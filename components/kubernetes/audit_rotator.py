"""OpenBao's audit log rotated inside its pod, where the OpenBao image (FROM scratch, the bao binary
alone) has no shell to move a file: a sidecar of the Python image built here, sharing the audit
volume and the pod's process namespace, running this file (from a ConfigMap; the standard library
only).

    python3 audit_rotator.py watch MAX_BYTES KEEP   the sidecar: rotates whenever the log passes MAX_BYTES
    python3 audit_rotator.py now KEEP               `make rotate-audit` (kubectl exec): rotates at once

A rotation is the local target's (`components.servers.openbao.rotate_audit_file`): the log moved
aside to `audit.log.<UTC time>`, SIGHUP to OpenBao (found by its command line in the shared process
namespace, the same user), and a wait until it has reopened its file (until then it writes on into
the moved one, so no line is lost); the KEEP newest moved logs are kept. A lock file keeps the
sidecar's loop and an exec from rotating at once. It prints the moved file's path (nothing when the
log was empty).
"""

import datetime
import fcntl
import os
import signal
import sys
import time
from pathlib import Path

AUDIT_LOG = Path("/openbao/audit/audit.log")
#: How often the sidecar looks at the log's size.
WATCH_SECONDS = 10
#: How long OpenBao may take to reopen its file after SIGHUP.
REOPEN_SECONDS = 30


class RotationError(RuntimeError):
    pass


def bao_pid(proc: Path = Path("/proc")) -> int:
    """OpenBao's server process in the pod's shared process namespace."""
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone, or not ours to read
        if argv and argv[0].endswith(b"bao") and b"server" in argv[1:]:
            return int(entry.name)
    raise RotationError("no OpenBao server process in the pod's process namespace (shareProcessNamespace)")


def moved_name(audit_log: Path, now: datetime.datetime) -> Path:
    """`<name>.<UTC time>` beside it (the names sort by time), as the local target names them."""
    return audit_log.with_name(f"{audit_log.name}.{now.astimezone(datetime.timezone.utc):%Y%m%dT%H%M%S.%fZ}")


def beyond(rotated: list[Path], keep: int) -> list[Path]:
    """The moved logs to delete: all but the `keep` newest."""
    ordered = sorted(rotated, key=lambda path: path.name)
    return ordered[:-keep] if keep > 0 else ordered


def rotate(audit_log: Path, keep: int, reopen=None) -> Path | None:
    """Moves the log aside, has OpenBao reopen it, waits until it has, deletes the moved logs beyond
    `keep`; the moved file, or None when the log was empty."""
    with open(audit_log.with_name(".rotate.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not audit_log.exists() or audit_log.stat().st_size == 0:
            return None
        moved = moved_name(audit_log, datetime.datetime.now(datetime.timezone.utc))
        audit_log.rename(moved)
        (reopen or (lambda: os.kill(bao_pid(), signal.SIGHUP)))()
        deadline = time.monotonic() + REOPEN_SECONDS
        while not audit_log.exists():
            if time.monotonic() > deadline:
                raise RotationError(f"OpenBao did not reopen {audit_log} within {REOPEN_SECONDS} s of SIGHUP "
                                    f"(its lines go on into {moved})")
            time.sleep(0.1)
        for old in beyond(list(audit_log.parent.glob(f"{audit_log.name}.*")), keep):
            old.unlink()
        return moved


def main(argv: list[str]) -> int:
    if argv[:1] == ["now"] and len(argv) == 2:
        moved = rotate(AUDIT_LOG, int(argv[1]))
        if moved:
            print(moved)
        return 0
    if argv[:1] == ["watch"] and len(argv) == 3:
        limit, keep = int(argv[1]), int(argv[2])
        while True:
            try:
                if AUDIT_LOG.exists() and AUDIT_LOG.stat().st_size > limit:
                    print(f"rotated to {rotate(AUDIT_LOG, keep)}", flush=True)
            except (OSError, RotationError) as error:
                print(f"rotation failed: {error}", file=sys.stderr, flush=True)
            time.sleep(WATCH_SECONDS)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
