"""The move from a KV password to dynamic credentials: its stages, each stage's policy, and the
component's graph at each stage with Pulumi's mocks. It runs for real in
tests/integration/test_static_to_dynamic.py."""

import json

import pulumi
import pytest

from components.grants import GrantSpec
from components.migration.stages import stage_change_problem, validate_stage
from components.vault_policies import migration_policy
from policies.rules.client_access import parse_policy
from tests.unit.graph import registered, unwrap

SPEC = GrantSpec(name="products-api", privileges=("SELECT",), tables=("public.orders",), default_ttl=900,
                 max_ttl=3600)
KV_READ = {"products-api-kv/data/database": {"read"}}
CREDS = {"products-api-db/creds/products-api": {"read"},
         "sys/leases/renew/products-api-db/creds/products-api/*": {"update"},
         "sys/leases/revoke/products-api-db/creds/products-api/*": {"update"},
         # The body form, its lease_id limited to the creds path (tests/unit/test_policy_client_access.py).
         "sys/leases/renew": {"update"}, "sys/leases/revoke": {"update"}}
OWN_TOKEN = {"auth/token/lookup-self": {"read"}, "auth/token/renew-self": {"update"},
             "auth/token/revoke-self": {"update"}}


@pytest.mark.parametrize("old, new", [(None, "static"), (None, "dynamic"), ("static", "dual"), ("dual", "dynamic"),
                                      ("static", "dynamic"), ("dual", "static"), ("dynamic", "dynamic")])
def test_forward_steps_and_a_step_back_from_dual_are_allowed(old, new):
    assert stage_change_problem(old, new) == ""


@pytest.mark.parametrize("new", ["static", "dual"])
def test_nothing_goes_back_from_dynamic(new):
    problem = stage_change_problem("dynamic", new)
    assert f"cannot go back from 'dynamic' to '{new}'" in problem and "password is dead" in problem


def test_a_rollback_and_a_second_try_walk_forward_then_nothing_goes_back():
    walk = ["static", "dual", "static", "dual", "dynamic"]
    assert [stage_change_problem(old, new) for old, new in zip([None, *walk], walk)] == [""] * len(walk)
    assert all(stage_change_problem(walk[-1], back) for back in ("dual", "static"))


@pytest.mark.parametrize("olds, stage, failures", [
    ({}, "dual", []),  # a first `up`: no stage in the state
    ({"app": "products-api", "stage": "dual"}, "static", []),
    ({"app": "products-api", "stage": "dynamic"}, "dynamic", []),
    ({"app": "products-api", "stage": "dynamic"}, "dual", ["stage"]),
    ({"app": "products-api", "stage": "dynamic"}, "static", ["stage"]),
])
def test_the_stage_resource_fails_its_check_on_the_stage_property(olds, stage, failures):
    from components.migration.stage_resource import _StageProvider

    news = {"app": "products-api", "stage": stage}
    result = _StageProvider().check(olds, news)
    assert result.inputs == news and [f.property for f in result.failures] == failures
    for failure in result.failures:
        # The engine prints it as one line: `property stage value {dual} has a problem: <reason>`.
        assert "\n" not in failure.reason and f"to {stage!r}" in failure.reason


def test_an_unknown_stage_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="^stage: must be one of static, dual, dynamic, not 'staic'"):
        validate_stage("staic", "stage")
    assert "must be one of" in stage_change_problem("static", "staic")


@pytest.mark.parametrize("stage, paths", [
    ("static", {**KV_READ, **OWN_TOKEN}),
    ("dual", {**KV_READ, **CREDS, **OWN_TOKEN}),
    ("dynamic", {**CREDS, **OWN_TOKEN}),
])
def test_each_stage_reads_exactly_its_paths(stage, paths):
    assert parse_policy(migration_policy(stage, "products-api-kv", "database", "products-api-db", "products-api")) \
        == paths


def engine_args():
    from components.vault.secrets_engine import DatabaseSecretsEngineArgs

    return DatabaseSecretsEngineArgs(
        specs=(SPEC,), group_roles={"products-api": "app_products_api"}, db_host="127.0.0.1", db_port=15432,
        db_name="app", admin="app_products_api_admin", admin_bootstrap_password="bootstrap",
        ca_file_on_vault="/vault/tls/database-ca.crt", max_ttl_cap=3600, mount_path="products-api-db")


def migration_args(stage: str, **changes):
    from components.migration.static_to_dynamic import StaticToDynamicArgs

    values = dict(app="products-api", stage=stage, username="products_api", password="legacy-password",
                  database="app", approle_mount="approle", checks_target={}, allowed=["SELECT 1"],
                  engine=None if stage == "static" else engine_args(), vault_token="admin-token")
    return StaticToDynamicArgs(**{**values, **changes})


@pytest.mark.parametrize("stage, changes, field", [
    ("dual", {"engine": None}, "engine"),
    ("later", {}, "stage"),
])
def test_args_that_cannot_make_the_stage_are_refused_naming_the_field(stage, changes, field):
    from components.migration.static_to_dynamic import validate_migration_args

    with pytest.raises(ValueError, match=f"^{field}:"):
        validate_migration_args(migration_args(stage, **changes))


def test_the_engine_has_exactly_the_apps_one_role():
    import dataclasses

    from components.migration.static_to_dynamic import validate_migration_args

    two = dataclasses.replace(engine_args(), specs=(SPEC, SPEC))
    with pytest.raises(ValueError, match="^engine.specs: .* exactly one grant spec, not 2"):
        validate_migration_args(migration_args("dual", engine=two))


MOUNT = "vault:index/mount:Mount"
KV = "vault:kv/secretV2:SecretV2"
STATIC_ROLE = "vault:database/secretBackendStaticRole:SecretBackendStaticRole"
ROLE = "vault:database/secretBackendRole:SecretBackendRole"
CHECKS = "pulumi-python:dynamic/dbcreds:PostDeployChecks"
STAGE = "pulumi-python:dynamic:Resource"


@pytest.mark.parametrize("stage", ["static", "dual", "dynamic"])
@pulumi.runtime.test
def test_each_stage_makes_its_resources_and_checks(monitor, ran, stage):
    from components.migration.static_to_dynamic import StaticToDynamic

    migration = StaticToDynamic("products-api", migration_args(stage))

    def check(values):
        kv_path, creds_path = values
        assert kv_path == (None if stage == "dynamic" else "products-api-kv/data/database")
        assert creds_path == (None if stage == "static" else "products-api-db/creds/products-api")
        mounts = {m["path"]: m for m in registered(monitor, MOUNT).values()}
        secrets = registered(monitor, KV)
        if stage == "dynamic":
            assert "products-api-kv" not in mounts and secrets == {}
        else:
            assert mounts["products-api-kv"]["options"] == {"version": "2"}
            (secret,) = secrets.values()
            # Every version goes when the secret does; its password is a secret input.
            assert secret["deleteAllVersions"] is True
            assert json.loads(unwrap(secret["dataJson"])) == {"username": "products_api",
                                                              "password": "legacy-password"}
            assert secret["dataJson"]["4dabf18193072939515e22adb298388d"] == pulumi.runtime.rpc._special_secret_sig
            assert secret["customMetadata"]["data"] == {"database": "app", "migration_stage": stage}
        assert ("products-api-db" in mounts) == (stage != "static")
        assert [r["name"] for r in registered(monitor, ROLE).values()] == ([] if stage == "static"
                                                                          else ["products-api"])
        statics = registered(monitor, STATIC_ROLE).values()
        # At `dynamic` Vault takes the user over: its password rotated at once, then daily.
        assert [(s["username"], s["rotationPeriod"]) for s in statics] == (
            [("products_api", 86400)] if stage == "dynamic" else [])
        (policy,) = registered(monitor, "vault:index/policy:Policy").values()
        assert policy["name"] == "app-products-api"
        dynamic = [r for n, r in registered(monitor, CHECKS).items() if n == "products-api-checks"]
        (checks,) = dynamic
        assert bool(unwrap(checks["kv_logins"])) == (stage != "dynamic")
        assert bool(unwrap(checks["clients"])) == (stage != "static")
        retired = unwrap(checks["retired_logins"])
        assert retired == ([{"username": "products_api", "password": "legacy-password"}]
                           if stage == "dynamic" else [])
        if stage == "dynamic":
            assert {"products-api-kv/data/database", "products-api-kv/metadata/database"} <= set(
                checks["protected_paths"])
        stage_guard = registered(monitor, STAGE)["products-api-stage"]
        assert stage_guard["stage"] == stage

    return pulumi.Output.all(migration.kv_path, migration.creds_path, migration.report).apply(
        lambda v: v[:2]).apply(ran(check))
