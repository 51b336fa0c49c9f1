"""The environment in which the built `pulumi` runs offline.

`make env` prints it as shell exports; the tests pass the same mapping to the
Automation API, so a shell and a test run the CLI the same way.

  PATH                     .tools/bin (the CLI and the dynamic-provider plugin) and .venv/bin first
                           (the language host finds the virtualenv's python on PATH)
  PYTHONPATH               the repository root, so programs and dynamic providers import `components`
  PULUMI_HOME              .pulumi/home: this checkout's plugin folder and workspace settings
  PULUMI_BACKEND_URL       file://.pulumi/state: the local file backend
  PULUMI_CONFIG_PASSPHRASE_FILE  .pulumi/passphrase: a random passphrase made once per
                           checkout (mode 0600) for the passphrase secrets provider; or, when
                           set already, the team's file (from its secret store), so every
                           checkout and CI decrypts the same stacks
Tests give their own state root: a backend and passphrase of their own, the same PULUMI_HOME.
  PULUMI_SKIP_UPDATE_CHECK, PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: never reach the network
"""

import os
import secrets
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def passphrase_path(state_root: Path) -> Path:
    return state_root / "passphrase"


def passphrase_file(state_root: Path) -> Path:
    """The checkout's passphrase file, made on first use with a random passphrase."""
    path = passphrase_path(state_root)
    if not path.exists():
        state_root.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path


PASSPHRASE_VARIABLE = "PULUMI_CONFIG_PASSPHRASE_FILE"
CHECKOUT_STATE = ROOT / ".pulumi"


class PassphraseError(SystemExit):
    """The team's passphrase file named in the environment cannot be used."""


def team_passphrase_file(environ: dict[str, str]) -> Path | None:
    """The passphrase file the environment names (a team's, shared by its checkouts and CI), checked
    before any stack is touched; None when it names none."""
    named = environ.get(PASSPHRASE_VARIABLE, "").strip()
    if not named:
        return None
    path = Path(named).expanduser()
    try:
        text = path.read_text()
    except OSError as error:
        raise PassphraseError(f"{PASSPHRASE_VARIABLE}={named}: cannot be read ({error.strerror})") from None
    if not text.strip():
        raise PassphraseError(f"{PASSPHRASE_VARIABLE}={named}: the file is empty")
    return path.resolve()


def pulumi_env(state_root: Path = CHECKOUT_STATE, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Variables that make `pulumi` use the built toolchain, and the backend and passphrase under state_root.
    The checkout's own state uses the team's passphrase file when the environment names one; any other
    state root (a test's) always has a passphrase of its own."""
    environ = os.environ if environ is None else environ
    team = team_passphrase_file(environ) if state_root == CHECKOUT_STATE else None
    path = os.pathsep.join([str(ROOT / ".tools" / "bin"), str(ROOT / ".venv" / "bin"), environ.get("PATH", "")])
    return {
        "PATH": path,
        "PYTHONPATH": str(ROOT),
        "PULUMI_HOME": str(ROOT / ".pulumi" / "home"),
        "PULUMI_BACKEND_URL": (state_root / "state").as_uri(),
        PASSPHRASE_VARIABLE: str(team or passphrase_file(state_root)),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
    }


def toolchain_version(name: str) -> str:
    """A version pinned in toolchain/versions.env (NAME=value lines), e.g. KUBERNETES_VERSION."""
    for line in (ROOT / "toolchain" / "versions.env").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip()
    raise KeyError(f"toolchain/versions.env pins no {name}")


def main() -> None:
    env = pulumi_env()
    (ROOT / ".pulumi" / "state").mkdir(parents=True, exist_ok=True)
    for key, value in env.items():
        print(f"export {key}={shlex.quote(value)}")


if __name__ == "__main__":
    sys.exit(main())
