"""An app's move from a KV password to dynamic credentials (examples/static-to-dynamic) on the
dev stack, as `up`s of one program: static, dual, back to static (the rollback), dual again and
dynamic, each followed by what can log in with what and which Vault paths the app reads; from the
rollback on, a second app at `static` beside it, neither reading the other's credentials; then
steps back from dynamic refused at preview and at up, the state unchanged; the platform unchanged."""

import json
import secrets

import psycopg
import pytest
import yaml
from hvac import exceptions as vault_errors
from psycopg import sql
from pulumi import automation as auto

from policies.rules.client_access import parse_policy
from stacks import local_target as local
from tests.automation import assert_only_the_checks_change, resources, state_text
from tests.support.dev_stack import quiet
from toolchain.env import ROOT

EXAMPLE = ROOT / "examples" / "static-to-dynamic"
APP, USER = "products-api", "products_api"
KV_PATH, KV_METADATA = f"{APP}-kv/data/database", f"{APP}-kv/metadata/database"
CREDS_PATH = f"{APP}-db/creds/{APP}"
STATIC_CREDS = f"{APP}-db/static-creds/{USER}"
# The second app: its name shares no prefix with the first's, so the audit log's paths stay apart.
OTHER, OTHER_USER = "orders-worker", "orders_worker"
OTHER_KV, OTHER_KV_METADATA = f"{OTHER}-kv/data/database", f"{OTHER}-kv/metadata/database"
PACK = str(ROOT / "policies")
CHECKS = "pulumi-python:dynamic/dbcreds:PostDeployChecks"

#: The example's program and, appended, a second app at 'static' once its password is set, as a team
#: moving two apps in one stack writes it.
SECOND_APP = f'''

other_password = config.get_secret("other_password")
if other_password is not None:
    other = StaticToDynamic("{OTHER}", StaticToDynamicArgs(
        app="{OTHER}", stage="static", username="{OTHER_USER}", password=other_password,
        database=output("db_name"), approle_mount=output("approle_mount"),
        checks_target={{k: output(k) for k in ("vault_addr", "vault_ca_pem", "db_host", "db_port", "db_name",
                                               "db_ca_pem")}},
        allowed=config.require_object("allowed"),
    ), opts=pulumi.ResourceOptions(providers=[provider]))
    pulumi.export("other_client", {{"approle_mount": output("approle_mount"), "role_id": other.role_id,
                                   "secret_id": other.secret_id}})
    pulumi.export("other_checks", other.report)
'''


def program(tmp_path):
    """A copy of the example, with the second app, on the checkout's virtualenv (the team-reports test
    proves the wheel)."""
    work = tmp_path / "static-to-dynamic"
    work.mkdir()
    (work / "__main__.py").write_text((EXAMPLE / "__main__.py").read_text() + SECOND_APP)
    (work / "Pulumi.yaml").write_text((EXAMPLE / "Pulumi.yaml").read_text())
    (work / "venv").symlink_to(ROOT / ".venv")
    return work


def legacy_user(platform, user: str, password: str) -> None:
    """An app's pre-existing user, as a team has it before the migration."""
    with local.superuser(platform.config) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(user), sql.Literal(password)))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(platform.outputs["db_name"]), sql.Identifier(user)))
        conn.execute(sql.SQL("GRANT SELECT ON public.orders TO {}").format(sql.Identifier(user)))


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


def check_names(report) -> set[str]:
    assert report["passed"], report
    return {c["name"] for c in report["checks"]}


def database_roles(platform, pattern: str) -> list[str]:
    """The database's roles whose names match pattern (LIKE)."""
    with local.superuser(platform.config) as conn:
        return [r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s ORDER BY 1",
                                           (pattern,)).fetchall()]


def dynamic_users(platform) -> list[str]:
    """The database's users made by the app's dynamic role (Vault's template: v_<role>_…)."""
    return database_roles(platform, "v\\_products\\_api\\_%")


def leases(admin) -> list[str]:
    """The app's creds path's leases Vault holds (none: the prefix is unknown, hvac gives None)."""
    listed = admin.list(f"sys/leases/lookup/{CREDS_PATH}/")
    return listed["data"]["keys"] if listed else []


def assert_only_the_two_apps_checks_change(stack) -> None:
    """A preview of the converged program: each app's checks update (they run at every update), nothing else."""
    checks = [r for r in stack.export_stack().deployment["resources"] if r["type"] == CHECKS]
    assert len(checks) == 2, [r["urn"] for r in checks]
    summary = stack.preview(on_output=quiet).change_summary
    assert summary.get("update") == 2 and set(summary) <= {"same", "update"}, summary


def issue(platform, app) -> dict:
    """Dynamic credentials from the app's creds path, checked to log in; the lease's response."""
    issued = app.read(CREDS_PATH)
    assert logs_in(platform, issued["data"]["username"], issued["data"]["password"])
    return issued


KV_LOGIN = f"{APP}: reads its static password from KV and logs in over verify-full"
DUAL_CHECKS = {KV_LOGIN, f"{APP}: allowed statements run over verify-full", f"{APP}: forbidden statements are refused",
               f"{APP}: revoked (lease id in the body) user cannot log in"}
OWN_TOKEN = {"auth/token/lookup-self": {"read"}, "auth/token/renew-self": {"update"},
             "auth/token/revoke-self": {"update"}}


def test_an_app_moves_from_its_kv_password_to_dynamic_credentials(platform, tmp_path):
    password, other_password = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    legacy_user(platform, USER, password)
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
        assert KV_LOGIN in check_names(outputs["checks"].value)
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
        assert DUAL_CHECKS <= check_names(outputs["checks"].value)
        app = platform.login_with(outputs["client"].value)
        assert app.read(KV_PATH)["data"]["data"]["password"] == password
        issued = issue(platform, app)
        assert logs_in(platform, USER, password)
        gate = stack.preview(policy_packs=[PACK], on_output=quiet).stdout
        assert "[advisory]" in gate and "kv-database-password-during-migration" in gate
        assert "mandatory" not in gate and password not in gate

        # Back to static (the rollback): the policy loses the creds path, the engine goes and, as its
        # mount is unmounted, every lease and the user it made; the KV password still logs in. A
        # second app joins at 'static' (it joins now: beside the first app's dynamic role, the gate
        # would refuse its KV password; see the gate rule kv-database-password-after-migration).
        assert issued["data"]["username"] in dynamic_users(platform)
        assert database_roles(platform, "app\\_products\\_api%")
        assert issued["lease_id"].removeprefix(f"{CREDS_PATH}/") in leases(admin)
        legacy_user(platform, OTHER_USER, other_password)
        stack.set_config("static-to-dynamic:stage", auto.ConfigValue("static"))
        stack.set_config("static-to-dynamic:other_password", auto.ConfigValue(other_password, secret=True))
        outputs = stack.up(on_output=quiet).outputs
        names = check_names(outputs["checks"].value)
        assert KV_LOGIN in names and not (DUAL_CHECKS - {KV_LOGIN}) & names, names
        assert outputs["kv_path"].value == KV_PATH and "creds_path" not in outputs
        rules = parse_policy(admin.sys.read_policy(f"app-{APP}")["data"]["rules"])
        assert rules == {KV_PATH: {"read"}, **OWN_TOKEN}, rules
        assert f"{APP}-db/" not in admin.sys.list_mounted_secrets_engines()["data"]
        assert dynamic_users(platform) == [] and leases(admin) == []
        # The engine's own roles in the database (its admin and the role's group) went with it.
        assert database_roles(platform, "app\\_products\\_api%") == []
        with pytest.raises(vault_errors.InvalidRequest):
            admin.sys.read_lease(issued["lease_id"])
        assert not logs_in(platform, issued["data"]["username"], issued["data"]["password"])
        app = platform.login_with(outputs["client"].value)
        assert not readable(app, CREDS_PATH)
        assert app.read(KV_PATH)["data"]["data"] == {"username": USER, "password": password}
        assert logs_in(platform, USER, password)
        # Two apps, each its own KV secret only (both there: the admin reads them).
        assert f"{OTHER}: reads its static password from KV and logs in over verify-full" in check_names(
            outputs["other_checks"].value)
        other = platform.login_with(outputs["other_client"].value)
        assert other.read(OTHER_KV)["data"]["data"]["password"] == other_password
        assert admin.read(OTHER_KV) and admin.read(KV_PATH)
        assert not readable(app, OTHER_KV) and not readable(app, OTHER_KV_METADATA)
        assert not readable(other, KV_PATH) and not readable(other, KV_METADATA)

        # dual again: the engine is back; the second app is refused the first's creds path.
        stack.set_config("static-to-dynamic:stage", auto.ConfigValue("dual"))
        outputs = stack.up(on_output=quiet).outputs
        assert DUAL_CHECKS <= check_names(outputs["checks"].value)
        app = platform.login_with(outputs["client"].value)
        issued = issue(platform, app)
        assert not readable(other, CREDS_PATH) and not readable(app, OTHER_KV)

        # dynamic: the KV secret and every version of it are gone, the old password is dead, Vault
        # holds the user.
        stack.set_config("static-to-dynamic:stage", auto.ConfigValue("dynamic"))
        outputs = stack.up(on_output=quiet).outputs
        names = check_names(outputs["checks"].value)
        assert {f"{USER}: its retired static password no longer logs in",
                f"static role {USER}: its current password logs in",
                f"{APP}: cannot read other clients' credentials or protected paths"} <= names
        assert KV_LOGIN not in names
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
        rotated = admin.read(STATIC_CREDS)["data"]
        assert rotated["password"] != password and logs_in(platform, USER, rotated["password"])
        assert logs_in(platform, issued["data"]["username"], issued["data"]["password"])  # leases live on
        # Neither app reads the other's static credentials: the first's user, now Vault's static
        # role, nor the second's KV password, nor the platform's static role.
        platform_static = [f"{platform.outputs['database_mount']}/static-creds/{role}" for role in
                           admin.list(f"{platform.outputs['database_mount']}/static-roles")["data"]["keys"]]
        assert platform_static and all(admin.read(path) for path in platform_static)
        assert not readable(other, STATIC_CREDS) and not readable(other, CREDS_PATH)
        assert not any(readable(app, path) for path in (OTHER_KV, OTHER_KV_METADATA, *platform_static))
        assert check_names(outputs["other_checks"].value)

        # Back from dynamic, to dual (at preview and at up) or static: refused naming the stage, in
        # one line, before anything changes.
        before = resources(stack)
        stack.set_config("static-to-dynamic:stage", auto.ConfigValue("dual"))
        refusals = []
        for run in (stack.preview, stack.up):
            with pytest.raises(auto.CommandError) as refused:
                run(on_output=quiet)
            refusals.append(str(refused.value))
        stack.set_config("static-to-dynamic:stage", auto.ConfigValue("static"))
        with pytest.raises(auto.CommandError) as refused:
            stack.preview(on_output=quiet)
        refusals.append(str(refused.value))
        for output, stage in zip(refusals, ("dual", "dual", "static")):
            # The engine's diagnostics hold the reason once, on one line naming the property.
            lines = [line.strip() for line in output.split("Diagnostics:")[1].splitlines()
                     if "cannot go back" in line]
            assert len(lines) == 1 and lines[0].startswith(
                f"error: pulumi-python:dynamic:Resource resource '{APP}-stage': property stage value "
                f"{{{stage}}} has a problem: cannot go back from 'dynamic' to {stage!r}: "), output
            # No frame of the program or the components: the refusal is the check's, not a crash.
            # (When the engine stops the program mid-registration, the SDK may print its own
            # frames of the shutdown; they are not counted here.)
            assert "__main__.py" not in output and f"{ROOT}/components" not in output, output
            assert password not in output
        assert resources(stack) == before
        stack.set_config("static-to-dynamic:stage", auto.ConfigValue("dynamic"))
        assert_only_the_two_apps_checks_change(stack)

        stack.destroy(on_output=quiet)
    finally:
        if stack.name in {s.name for s in stack.workspace.list_stacks()}:
            stack.destroy(on_output=quiet)
            stack.workspace.remove_stack(stack.name)

    # The apps' mounts, policies, roles and database users are gone; the platform is as it was.
    mounts = admin.sys.list_mounted_secrets_engines()["data"]
    assert not {f"{APP}-kv/", f"{APP}-db/", f"{OTHER}-kv/"} & set(mounts)
    assert not {f"app-{APP}", f"app-{OTHER}"} & set(admin.sys.list_policies()["data"]["policies"])
    with local.superuser(platform.config) as conn:
        left = conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v\\_products\\_api\\_%' "
                            "OR rolname LIKE 'app\\_products\\_api%'").fetchall()
    assert left == []
    assert_only_the_checks_change(platform.stack)
