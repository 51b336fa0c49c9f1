"""Puts a stack right after a `pulumi` run on this host was killed.

The file backend locks a stack while an operation runs. A `pulumi up` that is
killed (a closed terminal, an OOM kill, CI's timeout) leaves its lock behind,
and every later command refuses to run until `pulumi cancel`; a create it was
waiting for stays in the state as a pending operation. `make up`, `make
preview` and `make down` call this first: a lock whose process ran on this host
and is gone is removed, and named, and then the pending creates are dropped
from the state (the local servers clear their unrecorded work themselves, see
components/local/providers/local_server.py), and the run's provider plugins, orphaned,
are stopped. Any other lock is left alone.

  python3 -m toolchain.recover STACK
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

from toolchain.env import ROOT, pulumi_env

PROJECT = "dbcreds"


def _alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stale_locks(backend_url: str, stack: str) -> list[Path]:
    """The stack's lock files whose process ran on this host and is gone."""
    folder = Path(urlparse(backend_url).path) / ".pulumi" / "locks" / "organization" / PROJECT / stack
    stale = []
    for lock in sorted(folder.glob("*.json")):
        try:
            content = json.loads(lock.read_text())
        except (OSError, ValueError):
            continue
        pid = content.get("pid")
        if content.get("hostname") == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
            stale.append(lock)
    return stale


def orphaned_plugins(pulumi_home: str) -> list[int]:
    """Provider plugins of this PULUMI_HOME whose engine is gone (their parent is no `pulumi`): a killed
    run leaves them behind, serving no one."""
    plugins = f"{Path(pulumi_home) / 'plugins'}/"
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if not os.readlink(proc / "exe").startswith(plugins):
                continue
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            parent = Path(f"/proc/{ppid}/cmdline").read_bytes().split(b"\0")[0]
        except (OSError, ValueError, IndexError):
            continue
        if Path(parent.decode(errors="replace")).name != "pulumi":
            found.append(int(proc.name))
    return found


def recover(stack: str, env: dict[str, str], work_dir: Path = ROOT) -> list[Path]:
    """Removes the stack's stale locks and, if there were any, its pending creates and the killed run's
    orphaned provider plugins; returns the locks."""
    removed = stale_locks(env["PULUMI_BACKEND_URL"], stack)
    for lock in removed:
        lock.unlink(missing_ok=True)
        print(f"removed the lock of an interrupted pulumi run on stack {stack}: {lock.name}", file=sys.stderr)
    if removed:
        for pid in orphaned_plugins(env["PULUMI_HOME"]):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
                print(f"stopped an orphaned provider plugin of the interrupted run (pid {pid})", file=sys.stderr)
        subprocess.run(
            ["pulumi", "refresh", "--clear-pending-creates", "--yes", "--skip-preview", "--non-interactive",
             "--stack", stack],
            cwd=work_dir, env={**os.environ, **env}, check=True, stdout=subprocess.DEVNULL,
        )
    return removed


if __name__ == "__main__":
    recover(sys.argv[1], pulumi_env())
