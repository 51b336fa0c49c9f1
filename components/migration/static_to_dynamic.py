"""One application's move from a database password kept in Vault's KV store to dynamic credentials,
driven by its stage (`components.migration.stages`), with its post-deploy checks.

    migration = StaticToDynamic("products-api", StaticToDynamicArgs(
        app="products-api", stage="dual", username="products_api",
        password=config.require_secret("password"), database="app", approle_mount="approle",
        checks_target=target, allowed=["SELECT 1 FROM public.orders"], forbidden=[...],
        engine=DatabaseSecretsEngineArgs(specs=(spec,), mount_path="products-api-db", ...)),
        opts=pulumi.ResourceOptions(providers=[vault_provider], depends_on=[group, admin]))
    migration.role_id, migration.secret_id (secret), migration.kv_path, migration.creds_path, migration.report

Per stage:
- `static`: a KV v2 mount (`<app>-kv`) and the secret `database` in it holding
  the existing user and password (a secret input: encrypted in state, never
  an output); the app's AppRole login, whose policy reads that secret only.
- `dual`: also the app's database secrets engine (its one dynamic role); the
  policy reads the KV secret and the creds path. The checks log in with both.
- `dynamic`: the KV secret (every version: `delete_all_versions`) and its
  mount are destroyed, and the policy loses the path. The existing user is
  handed to Vault as a static role, which rotates its password at once and
  every `rotation_period`; it is not dropped, because a pre-existing app user
  usually owns the app's tables and sequences, and dropping it would mean
  reassigning them. Only an admin token reads its password. The checks prove
  the old password is refused, the KV paths are out of the app's reach, and
  dynamic credentials work.

A step back from `dynamic` fails at preview (`MigrationStage`).
"""

import dataclasses
import json
from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_vault as vault

from components.vault.approle_login import approle_login
from components.migration.stage_resource import MigrationStage
from components.vault.post_deploy_checks import CheckPlanArgs, PostDeployChecks
from components.grant_specs import ServiceUser
from components.migration.stages import validate_stage
from components.options import inherited_depends_on
from components.vault.secrets_engine import DatabaseSecretsEngine, DatabaseSecretsEngineArgs
from components.vault_policies import creds_path, kv_data_path, kv_metadata_path, migration_policy

#: The KV secret's name in the app's KV mount.
KV_SECRET = "database"


@dataclass(frozen=True)
class StaticToDynamicArgs:
    #: The app: names its KV mount, policy (`app-<app>`) and AppRole role.
    app: str
    #: static | dual | dynamic.
    stage: str
    #: The app's existing database user, and its password (secret).
    username: str
    password: pulumi.Input[str]
    #: The database the user logs in to (recorded in the KV secret's metadata, for the policy gate).
    database: pulumi.Input[str]
    approle_mount: pulumi.Input[str]
    #: `components.vault.check_plan.Target`'s fields: where the checks reach Vault and the database.
    checks_target: pulumi.Input[dict]
    #: Statements the app's credentials (static and dynamic) must run, and those dynamic ones must not.
    allowed: Sequence[str]
    forbidden: Sequence[str] = ()
    #: From `dual` on: the app's own engine, with exactly one grant spec (its dynamic role).
    engine: Optional[DatabaseSecretsEngineArgs] = None
    #: At `dynamic`: how often Vault rotates the existing user's password (seconds).
    rotation_period: int = 86400
    #: At `dynamic`, optional: a token that reads static-creds, so the checks prove Vault's password logs in.
    vault_token: pulumi.Input[str] = ""
    token_ttl: int = 15 * 60
    token_max_ttl: int = 60 * 60
    secret_id_ttl: int = 24 * 60 * 60


def validate_migration_args(args: StaticToDynamicArgs) -> None:
    """Raises ValueError naming the field when the args cannot make the stage."""
    validate_stage(args.stage, "stage")
    if args.stage == "static":
        return
    if args.engine is None:
        raise ValueError(f"engine: the {args.stage!r} stage issues dynamic credentials: give the app's engine")
    if len(args.engine.specs) != 1:
        raise ValueError(f"engine.specs: the app's engine has exactly one grant spec, not {len(args.engine.specs)}")
    if args.engine.service_users:
        raise ValueError("engine.service_users: the migration hands the app's user to Vault itself, at 'dynamic'")


class StaticToDynamic(pulumi.ComponentResource):
    """The app's KV secret, policy, AppRole login and engine for its stage, and the stage's checks."""

    role_id: pulumi.Output[str]
    secret_id: pulumi.Output[str]
    #: Where the app reads its KV password (static, dual), else None.
    kv_path: pulumi.Output[Optional[str]]
    #: Where the app issues dynamic credentials (dual, dynamic), else None.
    creds_path: pulumi.Output[Optional[str]]
    policy_name: pulumi.Output[str]
    report: pulumi.Output[dict]

    def __init__(self, name: str, args: StaticToDynamicArgs, opts: Optional[pulumi.ResourceOptions] = None):
        validate_migration_args(args)
        super().__init__("dbcreds:vault:StaticToDynamic", name, None, opts)
        stage = MigrationStage(f"{name}-stage", args.app, args.stage, opts=pulumi.ResourceOptions(parent=self))
        # Nothing moves until the stage's check has passed.
        after = [*inherited_depends_on(opts), stage]
        child = pulumi.ResourceOptions(parent=self, depends_on=after)
        kv_mount = f"{args.app}-kv"
        password = pulumi.Output.secret(args.password)

        engine = None
        if args.engine is not None:
            service_users = ((ServiceUser(args.username, args.engine.specs[0].name, args.rotation_period),)
                             if args.stage == "dynamic" else ())
            engine = DatabaseSecretsEngine(name, dataclasses.replace(args.engine, service_users=service_users),
                                           opts=child)
        role = args.engine.specs[0].name if args.engine else ""
        db_mount = args.engine.mount_path if args.engine else ""

        kv_secret = None
        if args.stage != "dynamic":
            mount = vault.Mount(f"{name}-kv", path=kv_mount, type="kv", options={"version": "2"},
                                description=f"{args.app}'s static database password, until it moves to "
                                            f"dynamic credentials", opts=child)
            kv_secret = vault.kv.SecretV2(
                f"{name}-kv-secret", mount=kv_mount, name=KV_SECRET,
                data_json=password.apply(lambda p: json.dumps({"username": args.username, "password": p})),
                custom_metadata=vault.kv.SecretV2CustomMetadataArgs(
                    data={"database": args.database, "migration_stage": args.stage}),
                # KV v2 keeps every version: deleting only the latest would leave the password readable.
                delete_all_versions=True,
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                    depends_on=[mount], additional_secret_outputs=["data", "data_json"])),
            )

        policy_name = f"app-{args.app}"
        policy = vault.Policy(f"{name}-policy", name=policy_name,
                              policy=migration_policy(args.stage, kv_mount, KV_SECRET, db_mount, role),
                              opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                                  depends_on=[*after, *([kv_secret] if kv_secret else [])])))
        login = approle_login(name, self, args.approle_mount, args.app, policy, policy_name, args.token_ttl,
                              args.token_max_ttl, args.secret_id_ttl, after)

        self.role_id = login.role_id
        self.secret_id = login.secret_id
        self.kv_path = pulumi.Output.from_input(kv_data_path(kv_mount, KV_SECRET) if kv_secret else None)
        self.creds_path = pulumi.Output.from_input(creds_path(db_mount, role) if engine else None)
        self.policy_name = policy.name
        self.report = self._checks(name, args, engine, kv_mount, password, [policy, *([engine] if engine else [])])
        self.register_outputs({"role_id": self.role_id, "secret_id": self.secret_id, "kv_path": self.kv_path,
                               "creds_path": self.creds_path, "policy_name": self.policy_name,
                               "report": self.report})

    def _checks(self, name: str, args: StaticToDynamicArgs, engine: Optional[DatabaseSecretsEngine],
                kv_mount: str, password: pulumi.Output[str], after: list) -> pulumi.Output[dict]:
        """The stage's post-deploy checks: what the app logs in with, and what no longer works."""
        login = pulumi.Output.all(args.approle_mount, self.role_id, self.secret_id).apply(
            lambda a: {"name": args.app, "approle_mount": a[0], "role_id": a[1], "secret_id": a[2]})
        kv_logins, clients, retired, extra = [], [], [], {}
        if args.stage != "dynamic":
            kv_logins = [pulumi.Output.all(login, self.kv_path).apply(
                lambda a: {**a[0], "kv_path": a[1], "allowed": list(args.allowed)})]
        if engine is not None:
            clients = [pulumi.Output.all(login, self.creds_path).apply(
                lambda a: {**a[0], "creds_path": a[1], "allowed": list(args.allowed),
                           "forbidden": list(args.forbidden), "max_ttl": args.engine.specs[0].max_ttl})]
            gone = [kv_data_path(kv_mount, KV_SECRET), kv_metadata_path(kv_mount, KV_SECRET)]
            extra = {
                "admin": args.engine.admin, "bootstrap_password": args.engine.admin_bootstrap_password,
                # At `dynamic`, the KV paths too are out of the app's reach.
                "protected_paths": engine.protected_paths.apply(
                    lambda paths: [*paths, *(gone if args.stage == "dynamic" else [])]),
                "group_roles": args.engine.group_roles,
            }
        if args.stage == "dynamic":
            retired = [password.apply(lambda p: {"username": args.username, "password": p})]
            if args.vault_token:
                extra.update(static_creds_paths=engine.static_creds_paths, vault_token=args.vault_token)
        checks = PostDeployChecks(
            f"{name}-checks", CheckPlanArgs(target=args.checks_target, clients=clients, kv_logins=kv_logins,
                                            retired_logins=retired, **extra),
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )
        return checks.report
