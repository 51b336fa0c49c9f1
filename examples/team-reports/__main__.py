"""The reports team's program: its own dynamic role, AppRole client and post-deploy checks, on the
platform's Vault and database, with the pulumi-dbcreds components. It reads the platform's outputs
with a StackReference and changes nothing of the platform's stack.

What it makes: a group role with its grant spec, a database admin of its own, a
database secrets mount of its own with one verify-full connection (its admin's
password rotated at once) and one dynamic role, an AppRole client on the
platform's AppRole mount, and its checks, run at every `up`: the client issues
credentials that do exactly what the grant says, and cannot read the
platform's clients' credentials.
"""

import pulumi
import pulumi_vault as vault

from components.vault.client_access import ClientAccess, ClientAccessArgs
from components.database_component import new_password
from components.vault.post_deploy_checks import CheckPlanArgs, PostDeployChecks, client_check
from components.dynamic.postgres_admin import PostgresAdminRole
from components.dynamic.postgres_group import PostgresGroupRole
from components.grants import validate_grant_spec
from components.postgres_sql import group_role_name
from components.vault.secrets_engine import DatabaseSecretsEngine, DatabaseSecretsEngineArgs

TEAM = "reports"
#: No credential of this team lives longer than an hour.
MAX_TTL_CAP = 3600

config = pulumi.Config()
platform = pulumi.StackReference(config.require("platform_stack"))
spec = validate_grant_spec(TEAM, config.require_object("grant"), MAX_TTL_CAP, field="grant")


def platform_output(name: str) -> pulumi.Output:
    return platform.require_output(name)


provider = vault.Provider(
    "platform-vault", address=platform_output("vault_addr"), token=platform_output("vault_admin_token"),
    ca_cert_file=platform_output("vault_ca_file"), skip_child_token=True,
)
in_database = {"data_dir": platform_output("db_data_dir"), "port": platform_output("db_port"),
               "database": platform_output("db_name")}
group = PostgresGroupRole(f"{TEAM}-group", admin=platform_output("db_admin"),
                          group=group_role_name("team", spec), spec=spec, **in_database)
bootstrap_password = new_password(f"{TEAM}-admin-bootstrap", None)
admin_name = f"team_{TEAM}_admin"
admin = PostgresAdminRole(f"{TEAM}-admin", username=admin_name, password=bootstrap_password, **in_database)
in_vault = pulumi.ResourceOptions(providers=[provider], depends_on=[group, admin])
engine = DatabaseSecretsEngine(TEAM, DatabaseSecretsEngineArgs(
    specs=(spec,), group_roles={TEAM: group.group}, db_host=platform_output("db_host"),
    db_port=platform_output("db_port"), db_name=platform_output("db_name"), admin=admin_name,
    admin_bootstrap_password=bootstrap_password, ca_file_on_vault=platform_output("vault_database_ca_file"),
    max_ttl_cap=MAX_TTL_CAP, mount_path=f"team-{TEAM}-db",
), opts=in_vault)
client = ClientAccess(f"team-{TEAM}", ClientAccessArgs(
    role=TEAM, database_mount=engine.mount_path, approle_mount=platform_output("approle_mount"),
), opts=in_vault)
platform_creds = platform_output("clients").apply(lambda clients: [c["creds_path"] for c in clients.values()])
checks = PostDeployChecks(f"{TEAM}-checks", CheckPlanArgs(
    target={k: platform_output(k) for k in ("vault_addr", "vault_ca_pem", "db_host", "db_port", "db_name",
                                            "db_ca_pem")},
    clients=[client_check(f"team-{TEAM}", client, config.require_object("allowed"),
                          config.require_object("forbidden"), spec.max_ttl)],
    admin=admin_name, bootstrap_password=bootstrap_password,
    # Nor the platform's clients' credentials, nor this team's connection config.
    protected_paths=pulumi.Output.all(platform_creds, engine.protected_paths).apply(lambda a: [*a[0], *a[1]]),
    # The team's users hold its group and nothing else.
    group_roles={TEAM: group.group},
), opts=pulumi.ResourceOptions(depends_on=[engine, client]))

pulumi.export("database_mount", engine.mount_path)
pulumi.export("client", {"approle_mount": client.approle_mount, "role_id": client.role_id,
                         "secret_id": client.secret_id, "creds_path": client.creds_path})
pulumi.export("checks", checks.report)
