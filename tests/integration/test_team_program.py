"""A second team's program (examples/team-reports) on the platform's dev stack, using the package as a
team would: the wheel the project builds, installed into the team's own virtualenv, and the
platform's outputs through a StackReference. The team's role, client and checks come and go; the
platform's stack does not change."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
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
from tests.support.wheelhouse import pip_from_wheelhouse
from toolchain.env import ROOT

EXAMPLE = ROOT / "examples" / "team-reports"


def team_program(tmp_path: Path) -> Path:
    """A copy of the example with its own virtualenv: the wheel and its dependencies, at the versions
    the project pins (the plugins built here are those). Its pip installs from the tests' wheelhouse
    (tests/support/wheelhouse.py) rather than the package index. (Its pip stays: Pulumi's language
    host lists the virtualenv's packages with it.)"""
    program = tmp_path / "team-reports"
    shutil.copytree(EXAMPLE, program, ignore=shutil.ignore_patterns("venv", "__pycache__"))
    subprocess.run([sys.executable, "-m", "venv", str(program / "venv")], check=True)
    # The project's pins as constraints (which take no extras).
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(re.sub(r"\[[a-z,]*\]", "", (ROOT / "requirements.txt").read_text()))
    install = subprocess.run(
        [str(program / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-c", str(constraints), str(build_wheel(tmp_path))],
        env=pip_from_wheelhouse(dict(os.environ)), capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    return program


def team_env(platform_env: dict[str, str], program: Path) -> dict[str, str]:
    """The platform's backend and passphrase, but the team's python: no PYTHONPATH into the checkout."""
    env = {k: v for k, v in platform_env.items() if k != "PYTHONPATH"}
    env["PATH"] = ":".join([str(ROOT / ".tools" / "bin"), str(program / "venv" / "bin"), "/usr/bin", "/bin"])
    return env


def team_login(platform):
    """Vault as the reports team's credential (the platform's `teams` output), nothing more."""
    return platform.login_with(platform.outputs["teams"]["reports"])


def refused(action) -> None:
    with pytest.raises(vault_errors.Forbidden):
        action()


def admin_password_hash(platform) -> str:
    """The platform admin's password as the database keeps it (a SCRAM verifier), read as the superuser."""
    with local.superuser(platform.config) as conn:
        return conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s",
                            (platform.config.database.admin,)).fetchone()[0]


def test_a_team_adds_its_role_client_and_checks_with_its_own_credential_and_leaves_the_platform_alone(
        platform, tmp_path):
    started = time.monotonic()
    program = team_program(tmp_path)
    example = yaml.safe_load((EXAMPLE / "Pulumi.example.yaml").read_text())["config"]
    team = auto.create_stack("team", work_dir=str(program), opts=auto.LocalWorkspaceOptions(
        env_vars=team_env(platform.stack.workspace.env_vars, program),
        pulumi_command=auto.PulumiCommand(root=str(ROOT / ".tools"), skip_version_check=True)))
    # The platform's outputs a team's program reads: the admin token and the superuser's socket are not among them.
    source = (EXAMPLE / "__main__.py").read_text()
    assert "vault_admin_token" not in source and "db_data_dir" not in source
    # The team's credential is secret within the platform's outputs: the state holds it only as ciphertext.
    exported = platform.stack.export_stack().deployment["resources"][0]["outputs"]["teams"]["reports"]
    for key in ("role_id", "secret_id"):
        assert exported[key]["4dabf18193072939515e22adb298388d"] == "1b47061264138c4ac30d75fd1eb44270", key
    try:
        team.set_all_config({
            "team-reports:platform_stack": auto.ConfigValue(f"organization/dbcreds/{platform.stack.name}"),
            **{k: auto.ConfigValue(v if isinstance(v, str) else json.dumps(v))
               for k, v in example.items() if k != "team-reports:platform_stack"},
        })
        outputs = team.up(on_output=quiet).outputs
        up_seconds = time.monotonic() - started
        report = outputs["checks"].value
        assert report["passed"], report
        names = {c["name"] for c in report["checks"]}
        assert {"team-reports: forbidden statements are refused",
                "team-reports: cannot read other clients' credentials or protected paths",
                "dynamic users hold nothing beyond their role's group"} <= names
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
            refused(lambda p=path: vault.read(p))
        revoke(vault, secret["lease_id"])

        started = time.monotonic()
        the_team_credential_reaches_its_own_mount_and_approle_roles_only(platform)
        refusals_seconds = time.monotonic() - started
        the_teams_sql_cannot_touch_the_platforms_admin(platform)
        sql_seconds = time.monotonic() - started - refusals_seconds
        started = time.monotonic()
        team.destroy(on_output=quiet)
        print(f"team up {up_seconds:.1f} s (its virtualenv included), its credential's refusals "
              f"{refusals_seconds:.1f} s, its SQL's {sql_seconds:.1f} s, destroy {time.monotonic() - started:.1f} s")
    finally:
        if team.name in {s.name for s in team.workspace.list_stacks()}:
            team.destroy(on_output=quiet)
            team.workspace.remove_stack(team.name)

    # The team's role, client and users are gone; what the platform made for the team stays, and the
    # platform is as it was.
    admin = platform.admin()
    assert "team-reports-app" not in admin.list("auth/approle/role")["data"]["keys"]
    assert "team-reports" in admin.list("auth/approle/role")["data"]["keys"]
    assert admin.list("team-reports-db/roles") is None
    assert {"team-reports", "client-team-reports"} <= set(admin.sys.list_policies()["data"]["policies"])
    with local.superuser(platform.config) as conn:
        left = conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v\\_reports\\_%'").fetchall()
    assert left == []
    assert_only_the_checks_change(platform.stack)


def the_team_credential_reaches_its_own_mount_and_approle_roles_only(platform) -> None:
    """Refused (403) with the team's credential: other creds paths, any connection's config, writing a
    policy, an AppRole role with another policy (or the default one, or outside its prefix), and sys/
    beyond its own token; allowed: what the team's program needs."""
    vault = team_login(platform)
    team = platform.outputs["teams"]["reports"]
    mount, approle = team["database_mount"], team["approle_mount"]
    assert (mount, team["client_policy"], team["approle_role_prefix"]) == (
        "team-reports-db", "client-team-reports", "team-reports-")
    # Its own token, and its own mount's roles.
    assert vault.lookup_token()["data"]["policies"] == ["team-reports"]
    assert vault.list(f"{mount}/roles")["data"]["keys"] == ["reports"]
    for path in ("database/creds/reader", "database/creds/app", "database/static-creds/svc_reporting",
                 "team-other-db/creds/other", "database/config/app", f"{mount}/config/app", "database/roles/reader",
                 "sys/mounts", "sys/auth", "sys/policies/acl", "sys/policies/acl/team-reports",
                 "sys/leases/lookup/database/creds/reader", "sys/metrics", "sys/storage/raft/configuration",
                 f"auth/{approle}/role/reader", f"auth/{approle}/role/team-reports", "auth/token/accessors"):
        refused(lambda p=path: vault.read(p))
    for path, data in (
        ("sys/policies/acl/team-reports-own", {"policy": 'path "*" { capabilities = ["read"] }'}),
        ("sys/policy/team-reports-own", {"policy": 'path "*" { capabilities = ["read"] }'}),
        (f"{mount}/config/app", {"plugin_name": "postgresql-database-plugin", "allowed_roles": "*"}),
        (f"{mount}/rotate-root/app", {}),
        ("sys/mounts/team-reports-kv", {"type": "kv"}),
        (f"auth/{approle}/role/reader", {"token_policies": ["client-team-reports"]}),
        (f"auth/{approle}/role/team-reports", {"token_policies": ["client-team-reports"]}),
        (f"auth/{approle}/role/team-other-app", {"token_policies": ["client-team-reports"]}),
        ("auth/token/create", {"policies": ["client-team-reports"]}),
    ):
        refused(lambda p=path, d=data: vault.write(p, **d))
    role = f"auth/{approle}/role/team-reports-probe"
    for data in ({"token_policies": ["client-reader"], "token_no_default_policy": True},
                 {"token_policies": ["client-team-reports", "client-reader"], "token_no_default_policy": True},
                 {"token_policies": "client-team-reports,team-reports", "token_no_default_policy": True},
                 {"token_policies": ["root"], "token_no_default_policy": True},
                 {"policies": ["client-reader"], "token_no_default_policy": True},
                 {"token_policies": ["client-team-reports"], "token_no_default_policy": False}):
        refused(lambda d=data: vault.write(role, **d))
    # What its program writes is allowed, and then its own to delete.
    vault.write(role, token_policies=["client-team-reports"], token_no_default_policy=True, token_ttl=60,
                token_max_ttl=120)
    vault.delete(role)


def the_teams_sql_cannot_touch_the_platforms_admin(platform) -> None:
    """The team writes its roles' SQL, which runs as its connection's user: SQL that alters the platform's
    admin, creates a role directly, or calls the team's functions for a user that is not the team's,
    fails at issuance, and the admin is as it was."""
    vault = team_login(platform)
    mount, admin = platform.outputs["teams"]["reports"]["database_mount"], platform.config.database.admin
    before = admin_password_hash(platform)
    for name, statement in (
        ("reports-alter", f"ALTER ROLE \"{admin}\" WITH PASSWORD 'taken-by-a-team'"),
        ("reports-expire", f"ALTER ROLE \"{admin}\" VALID UNTIL '2000-01-01'"),
        ("reports-direct", "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}'"),
        ("reports-grant", f"GRANT \"{admin}\" TO \"dbcreds_team_reports_vault\""),
        ("reports-other", "SELECT \"dbcreds_team_reports\".\"create_user\"('v_reader_taken', '{{password}}', "
                          "'{{expiration}}')"),
    ):
        vault.secrets.database.create_role(name, db_name="app", creation_statements=[statement],
                                           revocation_statements=["SELECT 1"], default_ttl=60, max_ttl=60,
                                           mount_point=mount)
        try:
            with pytest.raises((vault_errors.InternalServerError, vault_errors.InvalidRequest)) as error:
                vault.read(f"{mount}/creds/{name}")
            # PostgreSQL's insufficient_privilege, as Vault passes it on (the functions raise the same).
            assert "(sqlstate 42501)" in str(error.value).lower(), error.value
        finally:
            vault.secrets.database.delete_role(name, mount_point=mount)
    assert admin_password_hash(platform) == before
    # The platform's connection still logs in as its admin: its clients still issue.
    reader = platform.login("reader")
    revoke(reader, reader.read("database/creds/reader")["lease_id"])
