"""A server process started in its own session, found again through a pid file.

The servers outlive the `pulumi` run that starts them, so each is found again
by its pid file, and only if that process's command line still names the
server's own folder (a reused pid is not ours).
"""

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

STARTUP_SECONDS = 30
#: Where every local server listens.
LOOPBACK = "127.0.0.1"


@contextlib.contextmanager
def pem_file(pem: str) -> Iterator[str]:
    """pem in a private temporary file, removed afterwards: for the libraries that read a CA only
    from a file (libpq's sslrootcert, requests' verify)."""
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(pem)
        yield path
    finally:
        os.unlink(path)


def write_file(path: Path, text: str, mode: int) -> None:
    """Writes text with the mode set at creation (no moment with a wider one)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def running_pid(pid_file: Path, marker: str) -> int | None:
    """The pid in pid_file if that process runs and its command line contains marker."""
    try:
        pid = int(pid_file.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if marker.encode() in cmdline else None


def start_detached(argv: list[str], pid_file: Path, log: Path, ready: Callable[[], object], what: str,
                   error: type[Exception], cwd: Path | None = None) -> None:
    """Starts argv in its own session (in cwd), logging to log, and waits until ready() stops raising."""
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
                                   cwd=cwd)
    pid_file.write_text(str(process.pid))
    wait_ready(ready, process, log, what, error)


def wait_ready(ready: Callable[[], object], process: subprocess.Popen | None, log: Path, what: str,
               error: type[Exception], still_running: Callable[[], bool] = lambda: True) -> None:
    """Waits until ready() stops raising; fails early, with the log's end, if the process exits."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            ready()
            return
        except Exception as problem:  # noqa: BLE001 - not ready yet
            # Right after Popen the child may still be inside execve (empty
            # /proc cmdline): ask the process we started, not /proc.
            gone = process.poll() is not None if process is not None else not still_running()
            if gone or time.monotonic() > deadline:
                if process is not None and gone:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(timeout=5)
                code = process.returncode if process is not None else None
                status = "not answering" if code is None else f"exited with status {code}"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise error(f"{what} {status}: {problem}\n{log.name} ends:\n{tail}") from problem
            time.sleep(0.2)


def terminate(pid_file: Path, marker: str) -> None:
    """SIGTERM, then SIGKILL if it outlives STARTUP_SECONDS; removes the pid file."""
    pid = running_pid(pid_file, marker)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STARTUP_SECONDS
    while running_pid(pid_file, marker) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    if running_pid(pid_file, marker) is not None:
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
