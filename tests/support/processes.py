"""The processes and folders of this machine that a test made: processes found by what their
command line names, and data folders removed with wherever their links point."""

import shutil
from pathlib import Path

from components.servers.postgres import SYSTEM_DATA_ROOT


def processes_naming(text: str | Path) -> list[str]:
    """Command lines of live (not zombie) processes whose command line contains text (a data folder)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError, UnicodeDecodeError):
            continue
        if str(text) in cmdline and state != "Z":
            found.append(cmdline)
    return found


def remove_data_dir(folder: Path) -> None:
    """Removes a test's data folder and, for each link in it into SYSTEM_DATA_ROOT (where PostgreSQL's
    data goes when its account cannot enter the folder: a clone in a private home folder), the folder
    the link points to."""
    folder = Path(folder)
    if folder.exists():
        for link in [p for p in folder.rglob("*") if p.is_symlink()]:
            target = link.resolve()
            if target.parent == SYSTEM_DATA_ROOT.resolve():
                shutil.rmtree(target, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)


def system_data_folders() -> set[str]:
    """The folders under SYSTEM_DATA_ROOT now."""
    return {p.name for p in SYSTEM_DATA_ROOT.iterdir()} if SYSTEM_DATA_ROOT.is_dir() else set()
