"""An app's move from a KV password to dynamic credentials (examples/static-to-dynamic) on the
dev stack: static, dual and dynamic as three `up`s, each followed by what can log in with what and
which Vault paths the app reads; then a step back refused at preview; the platform unchanged."""

import json
import secrets

import psycopg
import pytest
import yaml
from hvac import exceptions as vault_errors
from psycopg import sql
from pulumi import automation as auto

from stacks import local
from tests.automation import assert_only_the_checks_change, state_text
from tests.support.dev_stack import dev_stack, quiet
from toolchain.env import ROOT

EXAMPLE = ROOT / "examples" / "static-to-dynamic"
APP, USER = "products-api", "products_api"
KV_PATH, KV_METADATA = f"{APP}-kv/data/database", f"{APP}-kv/metadata/database"
CREDS_PATH = f"{APP}-db/creds/{APP}"
PACK = str(ROOT / "policies")


def program(tmp_path):
    """A copy of the example on the checkout's virtualenv (the team-reports test proves the wheel)."""
    work = tmp_path / "static-to-dynamic"
    work.mkdir()
    for name in ("__main__.py", "Pulumi.yaml"):
        (work / name).write_text((EXAMPLE / name).read_text())
    (work / "venv").symlink_to(ROOT / ".venv")
    return work


def legacy_user(platform, password: str) -> None:
    """The app's pre-existing user, as a team has it before the migration."""
    with local.superuser(platform.config) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(USER), sql.Literal(password)))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(platform.outputs["db_name"]), sql.Identifier(USER)))
        conn.execute(sql.SQL("GRANT SELECT ON public.orders TO {}").format(sql.Identifier(USER)))


def logs_in(platform, user: str, password: str) -> bool:
    try:
        with platform.connect(user, password, autocommit=True) as conn:
            conn.execute("SELECT count(*) FROM public.orders")
        return True
    except psycopg.OperationalError as error:
        assert "password authentication failed" in str(error), error
        return False


def readable(vault, path: str) -> bool:
    try:
        vault.read(path)
        return True
    except vault_errors.Forbidden:
        return False


def check_names(outputs) -> set[str]:
    report = outputs["checks"].value
    assert report["passed"], report
    return {c["name"] for c in report["checks"]}


def test_an_app_moves_from_its_kv_password_to_dynamic_credentials(tmp_path):
    password = secrets.token_urlsafe(24)
    with dev_stack(tmp_path / "platform", "platform") as platform:
        legacy_user(platform, password)
        example = yaml.safe_load((EXAMPLE / "Pulumi.example.yaml").read_text())["config"]
        stack = auto.create_stack("migration", work_dir=str(program(tmp_path)), opts=auto.LocalWorkspaceOptions(
            env_vars=platform.stack.workspace.env_vars,
            pulumi_command=auto.PulumiCommand(root=str(ROOT / ".tools"), skip_version_check=True)))
        admin = platform.admin()
        try:
            stack.set_all_config({
                **{k: auto.ConfigValue(v if isinstance(v, str) else json.dumps(v)) for k, v in example.items()},
                "static-to-dynamic:platform_stack": auto.ConfigValue(f"organization/dbcreds/{platform.stack.name}"),
                "static-to-dynamic:password": auto.ConfigValue(password, secret=True),
            })

            # static: the app reads its password from KV, and nothing else.
            outputs = stack.up(on_output=quiet).outputs
            assert f"{APP}: reads its static password from KV and logs in over verify-full" in check_names(outputs)
            assert outputs["kv_path"].value == KV_PATH and "creds_path" not in outputs  # None: not exported
            app = platform.login_with(outputs["client"].value)
            assert app.read(KV_PATH)["data"]["data"] == {"username": USER, "password": password}
            assert not readable(app, KV_METADATA) and not readable(app, "database/creds/reader")
            assert logs_in(platform, USER, password)
            # The password is nowhere in plaintext: not in the state, not in an output.
            assert password not in state_text(stack) and password not in json.dumps(
                {k: v.value for k, v in outputs.items()})

            # dual: both log in; the gate advises finishing the move.
            stack.set_config("static-to-dynamic:stage", auto.ConfigValue("dual"))
            outputs = stack.up(on_output=quiet).outputs
            names = check_names(outputs)
            assert {f"{APP}: reads its static password from KV and logs in over verify-full",
                    f"{APP}: allowed statements run over verify-full", f"{APP}: forbidden statements are refused",
                    f"{APP}: revoked (lease id in the body) user cannot log in"} <= names
            app = platform.login_with(outputs["client"].value)
            assert app.read(KV_PATH)["data"]["data"]["password"] == password
            issued = app.read(CREDS_PATH)
            assert logs_in(platform, issued["data"]["username"], issued["data"]["password"])
            assert logs_in(platform, USER, password)
            gate = stack.preview(policy_packs=[PACK], on_output=quiet).stdout
            assert "[advisory]" in gate and "kv-database-password-during-migration" in gate
            assert "mandatory" not in gate and password not in gate

            # dynamic: the KV secret and every version of it are gone, the old password is dead, Vault
            # holds the user.
            stack.set_config("static-to-dynamic:stage", auto.ConfigValue("dynamic"))
            outputs = stack.up(on_output=quiet).outputs
            names = check_names(outputs)
            assert {f"{USER}: its retired static password no longer logs in",
                    f"static role {USER}: its current password logs in",
                    f"{APP}: cannot read other clients' credentials or protected paths"} <= names
            assert f"{APP}: reads its static password from KV and logs in over verify-full" not in names
            assert "kv_path" not in outputs
            assert not logs_in(platform, USER, password)
            app = platform.login_with(outputs["client"].value)
            assert not readable(app, KV_PATH)
            # Even the admin finds no version of it: the mount is gone with everything in it.
            assert f"{APP}-kv/" not in admin.sys.list_mounted_secrets_engines()["data"]
            for path in (KV_PATH, f"{KV_PATH}?version=1", KV_METADATA):
                assert admin.read(path) is None, path  # hvac: None for a 404
            # And before the mount went, every version was destroyed (a delete of the metadata path,
            # not of the data path, which deletes the latest version only): Vault's audit log says so.
            requests = [json.loads(line)["request"] for line in
                        local.vault_server(platform.config).audit_log.read_text().splitlines()
                        if '"type":"request"' in line]
            deletes = {r["path"] for r in requests if r.get("operation") == "delete" and r["path"].startswith(APP)}
            assert KV_METADATA in deletes and KV_PATH not in deletes, deletes
            rotated = admin.read(f"{APP}-db/static-creds/{USER}")["data"]
            assert rotated["password"] != password and logs_in(platform, USER, rotated["password"])
            assert logs_in(platform, issued["data"]["username"], issued["data"]["password"])  # leases live on

            # Back to static: refused at preview, naming the stage, and nothing changed.
            stack.set_config("static-to-dynamic:stage", auto.ConfigValue("static"))
            with pytest.raises(auto.CommandError) as refused:
                stack.preview(on_output=quiet)
            assert "cannot go back from 'dynamic' to 'static'" in str(refused.value)
            assert "stage" in str(refused.value)
            stack.set_config("static-to-dynamic:stage", auto.ConfigValue("dynamic"))
            assert_only_the_checks_change(stack)

            stack.destroy(on_output=quiet)
        finally:
            if stack.name in {s.name for s in stack.workspace.list_stacks()}:
                stack.destroy(on_output=quiet)
                stack.workspace.remove_stack(stack.name)

        # The app's mounts, policy, role and database users are gone; the platform is as it was.
        mounts = admin.sys.list_mounted_secrets_engines()["data"]
        assert f"{APP}-kv/" not in mounts and f"{APP}-db/" not in mounts
        assert f"app-{APP}" not in admin.sys.list_policies()["data"]["policies"]
        with local.superuser(platform.config) as conn:
            left = conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v\\_products\\_api\\_%' "
                                "OR rolname LIKE 'app\\_products\\_api%'").fetchall()
        assert left == []
        assert_only_the_checks_change(platform.stack)
