"""The reports team's program: its own dynamic role, AppRole client and post-deploy checks, on the
platform's Vault and database, with the pulumi-dbcreds components and the team's own credential. It
reads the platform's outputs with a StackReference and changes nothing of the platform's stack.

The platform made, for this team (its config's `teams.reports`): the team's group role with its grant,
a database mount of the team's own (its connection logs in as a user of the team's that makes users
only through the platform's functions), the team's client policy, and the team's credential (an
AppRole login whose policy writes this mount's roles and AppRole roles `team-reports-*` carrying the
client policy only). With that credential alone (no admin token, no database superuser) this program
makes a dynamic role whose SQL calls the team's functions, an AppRole client, and its checks, run at
every `up`: the client issues credentials that do exactly what the grant says, and cannot read the
platform's clients' credentials nor the team's connection.
"""

import pulumi
import pulumi_vault as vault

from components.grants import parse_ttl
from components.postgres_sql import (TeamDatabaseNames, team_creation_statements, team_renew_statements,
                                     team_revocation_statements)
from components.vault.client_access import ClientAccess, ClientAccessArgs
from components.vault.post_deploy_checks import CheckPlanArgs, PostDeployChecks, client_check

TEAM = "reports"
#: The team's dynamic role: `reports` or `reports-...` (the only names its mount's connection serves).
ROLE = "reports"

config = pulumi.Config()
platform = pulumi.StackReference(config.require("platform_stack"))
ttl = config.require_object("ttl")
default_ttl, max_ttl = parse_ttl(ttl["default_ttl"], "ttl.default_ttl"), parse_ttl(ttl["max_ttl"], "ttl.max_ttl")


def platform_output(name: str) -> pulumi.Output:
    return platform.require_output(name)


# The team's credential and what the platform made for it (role_id and secret_id are secrets).
team = platform_output("teams").apply(lambda teams: teams[TEAM])
provider = vault.Provider(
    "team-vault", address=platform_output("vault_addr"), ca_cert_file=platform_output("vault_ca_file"),
    auth_login=vault.ProviderAuthLoginArgs(
        path=team.apply(lambda t: f"auth/{t['approle_mount']}/login"),
        parameters=team.apply(lambda t: {"role_id": t["role_id"], "secret_id": t["secret_id"]}),
    ),
    # The login's token itself: the team's policy grants no child tokens.
    skip_child_token=True,
)
in_vault = pulumi.ResourceOptions(providers=[provider])
mount = team.apply(lambda t: t["database_mount"])
names = TeamDatabaseNames(TEAM)
role = vault.database.SecretBackendRole(
    f"{TEAM}-role", backend=mount, name=ROLE, db_name=team.apply(lambda t: t["connection_name"]),
    # The team's functions make, renew and drop its users: its connection's user may create no role.
    creation_statements=team_creation_statements(names), renew_statements=team_renew_statements(names),
    revocation_statements=team_revocation_statements(names), default_ttl=default_ttl, max_ttl=max_ttl,
    opts=in_vault,
)
client = ClientAccess(f"team-{TEAM}-app", ClientAccessArgs(
    role=ROLE, database_mount=mount, approle_mount=team.apply(lambda t: t["approle_mount"]),
    # Written by the platform: the team's AppRole roles may carry this policy only.
    existing_policy=team.apply(lambda t: t["client_policy"]),
), opts=pulumi.ResourceOptions(providers=[provider], depends_on=[role]))
platform_creds = platform_output("clients").apply(lambda clients: [c["creds_path"] for c in clients.values()])
checks = PostDeployChecks(f"{TEAM}-checks", CheckPlanArgs(
    target={k: platform_output(k) for k in ("vault_addr", "vault_ca_pem", "db_host", "db_port", "db_name",
                                            "db_ca_pem")},
    clients=[client_check(f"team-{TEAM}", client, config.require_object("allowed"),
                          config.require_object("forbidden"), max_ttl)],
    # Nor the platform's clients' credentials, nor this team's connection (the platform's).
    protected_paths=pulumi.Output.all(platform_creds, team).apply(
        lambda a: [*a[0], f"{a[1]['database_mount']}/config/{a[1]['connection_name']}"]),
    # The team's users hold its group and nothing else.
    group_roles=team.apply(lambda t: {ROLE: t["group"]}),
), opts=pulumi.ResourceOptions(depends_on=[role, client]))

pulumi.export("database_mount", mount)
pulumi.export("client", {"approle_mount": client.approle_mount, "role_id": client.role_id,
                         "secret_id": client.secret_id, "creds_path": client.creds_path})
pulumi.export("checks", checks.report)
