"""A second team's program (examples/team-reports) on the platform's dev stack, using the package as a
team would: the wheel the project builds, installed into the team's own virtualenv, and the
platform's outputs through a StackReference. The team's role, client and checks come and go; the
platform's stack does not change."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import yaml
from hvac import exceptions as vault_errors
from pulumi import automation as auto

from components.vault.checks import revoke
from stacks import local_target as local
from tests.automation import assert_only_the_checks_change
from tests.support.dev_stack import quiet
from tests.support.package import build_wheel
from toolchain.env import ROOT

EXAMPLE = ROOT / "examples" / "team-reports"


def team_program(tmp_path: Path) -> Path:
    """A copy of the example with its own virtualenv: the wheel and its dependencies, at the versions
    the project pins (the plugins built here are those)."""
    program = tmp_path / "team-reports"
    shutil.copytree(EXAMPLE, program, ignore=shutil.ignore_patterns("venv", "__pycache__"))
    subprocess.run([sys.executable, "-m", "venv", str(program / "venv")], check=True)
    # The project's pins as constraints (which take no extras).
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(re.sub(r"\[[a-z,]*\]", "", (ROOT / "requirements.txt").read_text()))
    install = subprocess.run(
        [str(program / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-c", str(constraints), str(build_wheel(tmp_path))], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    return program


def team_env(platform_env: dict[str, str], program: Path) -> dict[str, str]:
    """The platform's backend and passphrase, but the team's python: no PYTHONPATH into the checkout."""
    env = {k: v for k, v in platform_env.items() if k != "PYTHONPATH"}
    env["PATH"] = ":".join([str(ROOT / ".tools" / "bin"), str(program / "venv" / "bin"), "/usr/bin", "/bin"])
    return env


def test_a_team_adds_its_role_client_and_checks_and_leaves_the_platform_alone(platform, tmp_path):
    program = team_program(tmp_path)
    example = yaml.safe_load((EXAMPLE / "Pulumi.example.yaml").read_text())["config"]
    team = auto.create_stack("team", work_dir=str(program), opts=auto.LocalWorkspaceOptions(
        env_vars=team_env(platform.stack.workspace.env_vars, program),
        pulumi_command=auto.PulumiCommand(root=str(ROOT / ".tools"), skip_version_check=True)))
    try:
        team.set_all_config({
            "team-reports:platform_stack": auto.ConfigValue(f"organization/dbcreds/{platform.stack.name}"),
            **{k: auto.ConfigValue(v if isinstance(v, str) else json.dumps(v))
               for k, v in example.items() if k != "team-reports:platform_stack"},
        })
        outputs = team.up(on_output=quiet).outputs
        report = outputs["checks"].value
        assert report["passed"], report
        names = {c["name"] for c in report["checks"]}
        assert {"team-reports: forbidden statements are refused",
                "team-reports: cannot read other clients' credentials or protected paths"} <= names
        # The package came from the team's virtualenv, not the checkout.
        site = next((program / "venv" / "lib").glob("python3*/site-packages"))
        assert (site / "components" / "vault" / "secrets_engine.py").exists()

        # From outside: the team's client gets exactly its grant; the platform's creds are not its.
        client = outputs["client"].value
        vault = platform.login_with(client)
        secret = vault.read(client["creds_path"])
        creds = secret["data"]
        assert creds["username"].startswith("v_reports_")
        with platform.connect(creds["username"], creds["password"], autocommit=True) as conn:
            conn.execute("SELECT count(*) FROM public.orders")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT count(*) FROM public.users")
        for path in ("database/creds/reader", "database/creds/app"):
            with pytest.raises(vault_errors.Forbidden):
                vault.read(path)
        revoke(vault, secret["lease_id"])

        team.destroy(on_output=quiet)
    finally:
        if team.name in {s.name for s in team.workspace.list_stacks()}:
            team.destroy(on_output=quiet)
            team.workspace.remove_stack(team.name)

    # The team's mount, role, client and database roles are gone; the platform is as it was.
    admin = platform.admin()
    assert "team-reports-db/" not in admin.sys.list_mounted_secrets_engines()["data"]
    assert "team-reports" not in admin.list("auth/approle/role")["data"]["keys"]
    assert "client-team-reports" not in admin.sys.list_policies()["data"]["policies"]
    with local.superuser(platform.config) as conn:
        left = conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'team\\_%' "
                            "OR rolname LIKE 'v\\_reports\\_%'").fetchall()
    assert left == []
    assert_only_the_checks_change(platform.stack)
