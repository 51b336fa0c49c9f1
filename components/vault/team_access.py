"""A team's access, made by the platform: what a team needs to write its own dynamic roles and AppRole
clients without the platform's admin token or the database's superuser.

    team = TeamAccess("team-reports", TeamAccessArgs(
        team="reports", grant=grant_spec, max_ttl=3600, stack_access=database.stack_access, db_host="127.0.0.1",
        db_port=5432, db_name="app", admin="dbcreds_admin", ca_file_on_vault="/srv/openbao/database-ca.crt",
        approle_mount="approle", mount_path="team-reports-db", client_policy_name="client-team-reports",
        team_policy_name="team-reports"),
        opts=pulumi.ResourceOptions(providers=[vault_provider], depends_on=[database, approle]))
    team.role_id, team.secret_id (secret): the team's credential (an AppRole login)

- In PostgreSQL: the team's group role with its grant (`PostgresGroupRole`), and its connection user,
  which may create no role: the admin's SECURITY DEFINER functions make, renew and drop the team's
  users (`v_<team>_...`, in its group, within `max_ttl`) for it (`PostgresTeamAccess`). A Vault
  role's creation SQL runs as the connection's user, and the team writes its roles' SQL.
- In Vault: a database mount of the team's own, its lease cap `max_ttl`, with one verify-full
  connection as that user (its password rotated at once, `DatabaseSecretsEngine`) serving the roles
  named `<team>` or `<team>-...`; the team's client policy (every creds path of its mount); the team
  policy (`components.vault_policies.team_policy`: its mount's roles, and AppRole roles
  `team-<team>-...` carrying the client policy only); and the team's credential, the AppRole role
  `team-<team>` with the team policy, whose secret_id is rotated as a client's is.
"""

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_vault as vault

from components.database_component import new_password
from components.dynamic.postgres_group import PostgresGroupRole
from components.dynamic.postgres_team import PostgresTeamAccess
from components.grant_specs import GrantSpec
from components.options import inherited_depends_on
from components.postgres_sql import TeamDatabaseNames
from components.vault.approle_login import approle_login
from components.vault.secrets_engine import DatabaseSecretsEngine, DatabaseSecretsEngineArgs
from components.vault_policies import team_client_policy, team_policy


@dataclass(frozen=True)
class TeamAccessArgs:
    #: The team's name (`components.postgres_sql.TEAM_NAME`).
    team: str
    #: What the team's users may do: the group role's privileges (its TTLs are not read).
    grant: GrantSpec
    #: No lease of the team's mount, and no user its functions make, outlives this (seconds).
    max_ttl: int
    #: How the stack reaches a role that makes the team's roles and functions: the database
    #: component's `stack_access` (the local superuser, or the external server's stack admin).
    stack_access: dict
    db_host: pulumi.Input[str]
    db_port: pulumi.Input[int]
    db_name: pulumi.Input[str]
    #: Owns the tables the grant names and the team's functions: the database component's `owner`
    #: (the stack's admin on a local server, the stack admin on an external one).
    admin: pulumi.Input[str]
    #: Path, on the Vault server, of the CA that verifies the database.
    ca_file_on_vault: pulumi.Input[str]
    #: The platform's AppRole mount: the team's credential logs in there, and its clients too.
    approle_mount: str
    #: The names in Vault (a stack that shares its Vault gives prefixed ones).
    mount_path: str
    client_policy_name: str
    team_policy_name: str
    #: The team's connection's root credential is rotated again by the first `up` after this.
    root_rotation_period: int = 30 * 86400
    #: The team credential's token lifetimes and its secret_id's.
    token_ttl: int = 15 * 60
    token_max_ttl: int = 60 * 60
    secret_id_ttl: int = 24 * 60 * 60

    @property
    def approle_role(self) -> str:
        """The team credential's AppRole role."""
        return self.approle_role_of(self.team)

    @staticmethod
    def approle_role_of(team: str) -> str:
        """Team `team`'s credential's AppRole role."""
        return f"team-{team}"

    @property
    def approle_role_prefix(self) -> str:
        """What the team's own AppRole roles are named (never its credential's role)."""
        return f"team-{self.team}-"


class TeamAccess(pulumi.ComponentResource):
    """A team's group role, connection user and functions, mount, policies and credential."""

    mount_path: pulumi.Output[str]
    connection_name: pulumi.Output[str]
    group: pulumi.Output[str]
    connection_user: pulumi.Output[str]
    client_policy_name: pulumi.Output[str]
    team_policy_name: pulumi.Output[str]
    approle_mount: pulumi.Output[str]
    approle_role: pulumi.Output[str]
    approle_role_prefix: pulumi.Output[str]
    role_id: pulumi.Output[str]
    #: Secret.
    secret_id: pulumi.Output[str]
    #: The connection's config and whatever else of the mount no client may read.
    protected_paths: pulumi.Output[list]
    #: The connection user's first password (secret), which Vault rotated: it must no longer log in.
    bootstrap_password: pulumi.Output[str]

    def __init__(self, name: str, args: TeamAccessArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:vault:TeamAccess", name, None, opts)
        names = TeamDatabaseNames(args.team)
        after = inherited_depends_on(opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=after)
        in_database = {**args.stack_access, "database": args.db_name}
        group = PostgresGroupRole(f"{name}-group", admin=args.admin, group=names.group, spec=args.grant,
                                  **in_database, opts=child)
        password = new_password(f"{name}-bootstrap", self)
        database = PostgresTeamAccess(
            f"{name}-database", admin=args.admin, team=args.team, group=group.group, password=password,
            max_ttl=args.max_ttl, connection_limit=args.grant.connection_limit, **in_database,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*after, group]))
        engine = DatabaseSecretsEngine(name, DatabaseSecretsEngineArgs(
            specs=(), group_roles={}, db_host=args.db_host, db_port=args.db_port, db_name=args.db_name,
            # Its name from the args, known at a first preview (the policy gate judges the connection then).
            admin=names.user, admin_bootstrap_password=password, ca_file_on_vault=args.ca_file_on_vault,
            max_ttl_cap=args.max_ttl, mount_path=args.mount_path, root_rotation_period=args.root_rotation_period,
            # The roles the team writes: the username template makes v_<team>_... of them, which the
            # functions take (no role of another team's is named so: team names have no separator).
            allowed_role_globs=(args.team, f"{args.team}-*"),
        ), opts=pulumi.ResourceOptions(parent=self, depends_on=[*after, database]))
        client_policy = vault.Policy(f"{name}-client-policy", name=args.client_policy_name,
                                     policy=team_client_policy(args.mount_path), opts=child)
        policy = vault.Policy(f"{name}-policy", name=args.team_policy_name, policy=team_policy(
            args.mount_path, args.approle_mount, args.approle_role_prefix, args.client_policy_name),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*after, client_policy]))
        # Its role_id is secret in the state as in the output: half of a login that writes roles.
        login = approle_login(name, self, args.approle_mount, args.approle_role, policy, args.team_policy_name,
                              args.token_ttl, args.token_max_ttl, args.secret_id_ttl, [*after, engine],
                              secret_role_id=True)
        self.mount_path = engine.mount_path
        self.connection_name = engine.connection_name
        self.group = group.group
        # Names from the args, known at a first preview; what uses them waits for this component.
        self.connection_user = pulumi.Output.from_input(names.user)
        self.client_policy_name = client_policy.name
        self.team_policy_name = policy.name
        self.approle_mount = pulumi.Output.from_input(args.approle_mount)
        self.approle_role = pulumi.Output.from_input(args.approle_role)
        self.approle_role_prefix = pulumi.Output.from_input(args.approle_role_prefix)
        self.role_id = pulumi.Output.secret(login.role_id)
        self.secret_id = login.secret_id
        self.protected_paths = engine.protected_paths
        self.bootstrap_password = pulumi.Output.secret(password)
        self.register_outputs({
            "mount_path": self.mount_path, "connection_name": self.connection_name, "group": self.group,
            "connection_user": self.connection_user, "client_policy_name": self.client_policy_name,
            "team_policy_name": self.team_policy_name, "approle_mount": self.approle_mount,
            "approle_role": self.approle_role, "approle_role_prefix": self.approle_role_prefix,
            "role_id": self.role_id, "secret_id": self.secret_id, "protected_paths": self.protected_paths,
            "bootstrap_password": self.bootstrap_password,
        })
