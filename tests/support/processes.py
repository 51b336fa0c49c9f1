"""The processes of this machine that a test started, found by what their command line names."""

from pathlib import Path


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
