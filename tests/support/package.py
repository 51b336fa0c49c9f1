"""The pulumi-dbcreds package as a team installs it: the wheel built from the checkout's sources."""

import shutil
import subprocess
import sys
from pathlib import Path

from toolchain.env import ROOT


def build_wheel(tmp_path: Path) -> Path:
    """The package's wheel, built from a copy of the checkout's sources."""
    source = tmp_path / "source"
    shutil.copytree(ROOT / "components", source / "components", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "--wheel-dir", str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("pulumi_dbcreds-*.whl")
    return wheel
