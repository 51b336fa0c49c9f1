"""`make up` and `make down` from a checkout inside a private folder (mode 0700, as `mktemp -d` and
home folders are), as a new user would run them: PostgreSQL's service account cannot enter it, so its
data goes where it can, and nothing is left after `make down`."""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from components.local.postgres import system_data_dir
from tests.support.ports import free_ports
from toolchain.env import ROOT

STACK = "anywhere"


def copy_checkout(to: Path) -> None:
    """The checkout's files as they are now (tracked, and new ones not ignored), without its .venv,
    .pulumi, .tools or .data."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, to / name)


def run_in(checkout: Path, command: str) -> subprocess.CompletedProcess:
    """command in a shell of the checkout's own, as `eval "$(make -s env)"` makes it: nothing of this
    test run's Pulumi settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_") and k != "PYTHONPATH"}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not p.startswith(str(ROOT)))
    return subprocess.run(["bash", "-c", f'eval "$(make -s env)" && {command}'], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=1800)


def make(target: str, checkout: Path) -> subprocess.CompletedProcess:
    return run_in(checkout, f"make {target} STACK={STACK}")


def test_make_up_and_down_from_a_private_folder():
    home = Path(tempfile.mkdtemp(prefix="dbcreds-home-"))
    assert home.stat().st_mode & 0o777 == 0o700
    checkout = home / "dbcreds"
    copy_checkout(checkout)
    config = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    keys = ("vault_port", "vault_cluster_port", "db_port", "db_http_port")
    config.update({f"dbcreds:{key}": port for key, port in zip(keys, free_ports(len(keys)))})
    config["dbcreds:data_dir"] = f".data/{STACK}"
    (checkout / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump({"config": config}))
    data_dir = checkout / ".data" / STACK / "postgres"
    up = None
    try:
        up = make("up", checkout)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        # The post-deploy checks ran and passed inside that up.
        report = json.loads(run_in(checkout, "python3 -m toolchain.stack_file anywhere -- "
                                             "pulumi stack output checks --json --stack anywhere").stdout)
        assert report["passed"] and len(report["checks"]) > 10
        # The database's data is where its service account reaches it; the checkout links to it.
        if os.geteuid() == 0:
            assert data_dir.is_symlink() and data_dir.resolve() == system_data_dir(data_dir)
        # The stack file is as it was: the salt stays out of it.
        assert "encryptionsalt" not in (checkout / f"Pulumi.{STACK}.yaml").read_text()
        down = make("down", checkout)
        assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-3000:]
        assert "no lease, no dynamic user, no server left" in down.stderr
        assert not data_dir.exists() and not system_data_dir(data_dir).exists()
    finally:
        if up is not None and data_dir.exists():
            make("down", checkout)
        shutil.rmtree(home, ignore_errors=True)
