"""One app's move from a database password kept in Vault's KV store to dynamic credentials,
on the platform's Vault and database, with the pulumi-dbcreds components. Its `stage` config walks
static -> dual -> dynamic, one `pulumi up` each; see README.md for what each stage's checks prove.

From `dual` on, the app has its own database secrets engine (a mount with one
verify-full connection whose admin is rotated at once, and one dynamic role
whose users join the app's group role), as a team's program does
(examples/team-reports). The platform's stack is read with a StackReference
and never changed.
"""

import pulumi
import pulumi_vault as vault

from components.database_component import new_password
from components.dynamic.postgres_admin import PostgresAdminRole
from components.dynamic.postgres_group import PostgresGroupRole
from components.grants import validate_grant_spec
from components.migration.static_to_dynamic import StaticToDynamic, StaticToDynamicArgs
from components.migration.stages import validate_stage
from components.postgres_sql import group_role_name
from components.vault.secrets_engine import DatabaseSecretsEngineArgs

#: No credential of this app lives longer than an hour.
MAX_TTL_CAP = 3600

config = pulumi.Config()
app = config.require("app")
stage = validate_stage(config.require("stage"), "stage")
spec = validate_grant_spec(app, config.require_object("grant"), MAX_TTL_CAP, field="grant")
platform = pulumi.StackReference(config.require("platform_stack"))
output = platform.require_output

provider = vault.Provider(
    "platform-vault", address=output("vault_addr"), token=output("vault_admin_token"),
    ca_cert_file=output("vault_ca_file"), skip_child_token=True,
)
engine, database_roles = None, []
if stage != "static":
    in_database = {"data_dir": output("db_data_dir"), "port": output("db_port"), "database": output("db_name")}
    group = PostgresGroupRole(f"{app}-group", admin=output("db_admin"), group=group_role_name("app", spec),
                              spec=spec, **in_database)
    admin_name = f"app_{app.replace('-', '_')}_admin"
    bootstrap_password = new_password(f"{app}-admin-bootstrap", None)
    admin = PostgresAdminRole(f"{app}-admin", username=admin_name, password=bootstrap_password, **in_database)
    database_roles = [group, admin]
    engine = DatabaseSecretsEngineArgs(
        specs=(spec,), group_roles={spec.name: group.group}, db_host=output("db_host"), db_port=output("db_port"),
        db_name=output("db_name"), admin=admin_name, admin_bootstrap_password=bootstrap_password,
        ca_file_on_vault=output("vault_database_ca_file"), max_ttl_cap=MAX_TTL_CAP, mount_path=f"{app}-db",
    )

migration = StaticToDynamic(app, StaticToDynamicArgs(
    app=app, stage=stage, username=config.require("username"), password=config.require_secret("password"),
    database=output("db_name"), approle_mount=output("approle_mount"),
    checks_target={k: output(k) for k in ("vault_addr", "vault_ca_pem", "db_host", "db_port", "db_name",
                                          "db_ca_pem")},
    allowed=config.require_object("allowed"), forbidden=config.get_object("forbidden") or [],
    engine=engine, vault_token=output("vault_admin_token"),
), opts=pulumi.ResourceOptions(providers=[provider], depends_on=database_roles))

pulumi.export("stage", stage)
pulumi.export("client", {"approle_mount": output("approle_mount"), "role_id": migration.role_id,
                         "secret_id": migration.secret_id})
pulumi.export("kv_path", migration.kv_path)
pulumi.export("creds_path", migration.creds_path)
pulumi.export("checks", migration.report)
