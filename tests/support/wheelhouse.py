"""The wheels of requirements.txt's pins, downloaded once per machine, for the tests that make a new
virtualenv (a new checkout's `make up`, a team's own virtualenv): their pip installs from this folder
instead of the package index.

The install itself still runs as it would for a new user (a new virtualenv, every pinned package
resolved and installed); only the index's answers and the downloads are read from here. The folder is
kept in the per-user cache toolchain/bootstrap.sh keeps its binaries in, named by requirements.txt's
hash and the Python version (the binary wheels are Python's and the platform's), so a warm run
downloads nothing and a changed requirements.txt gets a folder of its own.
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from toolchain.env import ROOT

#: Written last into a complete folder: a download that was killed leaves no folder of that name.
COMPLETE = ".complete"


def cache_root() -> Path:
    """The per-user cache of toolchain/bootstrap.sh (PULUMI_DBCREDS_CACHE, else XDG's)."""
    return Path(os.environ.get("PULUMI_DBCREDS_CACHE")
                or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pulumi-dbcreds")


def wheelhouse(requirements: Path = ROOT / "requirements.txt") -> Path:
    """The folder of the wheels requirements pins (and their dependencies), downloaded by the first
    caller on this machine; others wait for it (a lock), then read it."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    folder = cache_root() / "test-wheels" / f"{digest}-py{sys.version_info.major}{sys.version_info.minor}"
    if (folder / COMPLETE).exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / "download.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / COMPLETE).exists():
            staged = Path(tempfile.mkdtemp(prefix=f"{folder.name}.", dir=folder.parent))
            try:
                download = subprocess.run(
                    [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                     "--only-binary", ":all:", "-r", str(requirements), "-d", str(staged)],
                    capture_output=True, text=True)
                assert download.returncode == 0, download.stderr[-3000:]
                (staged / COMPLETE).touch()
                shutil.rmtree(folder, ignore_errors=True)
                staged.rename(folder)
            finally:
                shutil.rmtree(staged, ignore_errors=True)
    return folder


def pip_from_wheelhouse(env: dict[str, str], python: str = sys.executable,
                        requirements: Path = ROOT / "requirements.txt") -> dict[str, str]:
    """env with pip told to install from the wheelhouse only (no index), as every pip it starts reads
    its settings from the environment; env as it is when python (the interpreter whose virtualenv pip
    installs into) is another Python version than the wheelhouse's, whose binary wheels would not fit it."""
    version = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                             text=True).stdout.split()
    if version != [str(sys.version_info.major), str(sys.version_info.minor)]:
        return env
    links = " ".join(filter(None, [str(wheelhouse(requirements)), env.get("PIP_FIND_LINKS", "")]))
    return {**env, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": links}
