"""Vault's database secrets engine for one database (pulumi-vault).

    engine = DatabaseSecretsEngine("engine", DatabaseSecretsEngineArgs(
        specs=(reader_spec,), group_roles={"reader": "dbcreds_group_reader"}, db_host="127.0.0.1",
        db_port=5432, db_name="app", admin="dbcreds_admin", admin_bootstrap_password=password,
        ca_file_on_vault="/srv/openbao/tls/database-ca.crt", max_ttl_cap=86400),
        opts=pulumi.ResourceOptions(providers=[vault_provider], depends_on=[database]))
    engine.mount_path, engine.roles, engine.protected_paths

- A mount whose lease cap is the environment's: no lease outlives it, issued or renewed.
- One connection per database: two on one database race each other's GRANTs.
- verify-full TLS with the CA at `ca_file_on_vault` (OpenBao 2.7's postgres
  plugin ignores `tls_ca`, so the CA is a file on the Vault host), and
  {{username}}/{{password}} templating so that Vault can rotate the root.
- The bootstrap password is write-only (`password_wo`): it is sent when its
  version changes and never again, so a later change to the connection cannot
  put the stale bootstrap password back over the one Vault rotated.
- Root rotation right after the connection is made, again whenever the
  connection is replaced or the bootstrap password is re-sent, and at the first
  `up` after each `root_rotation_period` (OpenBao has no schedule of its own: a
  `Rotation` the rotate-root endpoint is replaced with; the replacement writes
  rotate-root again).
- `allowed_roles` lists exactly the roles; each role's SQL only joins its group.
- A static role per pre-existing service user, rotated every rotation_period.
- Taking the whole engine down revokes every lease first: the connection and roles
  go with the mount (`deleted_with`), whose unmounting revokes the leases while
  the connection still exists, and before the database goes (the component's
  `depends_on` holds for each child).
"""

import json
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_vault as vault

from components.grant_specs import GrantSpec, ServiceUser
from components.options import inherited_depends_on
from components.postgres_sql import username_template
from components.sql_dialects import dialect_named
from components.vault.rotation import Rotation

#: Connections Vault's plugin opens to the database at most (it opens them lazily, several at once).
MAX_OPEN_CONNECTIONS = 4


@dataclass(frozen=True)
class DatabaseSecretsEngineArgs:
    specs: tuple[GrantSpec, ...]
    #: Grant spec name to the group role the database component made for it.
    group_roles: pulumi.Input[dict]
    db_host: pulumi.Input[str]
    db_port: pulumi.Input[int]
    db_name: pulumi.Input[str]
    admin: pulumi.Input[str]
    admin_bootstrap_password: pulumi.Input[str]
    #: Path, on the Vault server, of the CA that verifies the database.
    ca_file_on_vault: pulumi.Input[str]
    #: No lease on the mount outlives this (seconds).
    max_ttl_cap: int
    mount_path: str = "database"
    #: Pre-existing users Vault manages as static roles (the role is named after the user).
    service_users: tuple[ServiceUser, ...] = ()
    #: Changes when the bootstrap password does (a new database server): the password is sent
    #: again, then rotated at once.
    bootstrap_password_version: pulumi.Input[int] = 1
    #: The database's SQL dialect (a key of components.sql_dialects.DIALECTS).
    dialect: str = "postgresql"
    #: The root credential is rotated again by the first `up` after this many seconds (30 days unless given).
    root_rotation_period: int = 30 * 86400
    #: Roles the connection also serves, by glob, that this component does not make: a team's own, which
    #: it writes in its mount (`components.vault.team_access`).
    allowed_role_globs: tuple[str, ...] = ()


def connection_url(host: str, port: int, database: str, ca_file: str) -> str:
    """The plugin's connection URL: templated credentials, verify-full TLS.

    port may arrive as a float (numbers cross Pulumi's wire, and StackReferences, as floats)."""
    return (
        f"postgresql://{{{{username}}}}:{{{{password}}}}@{host}:{int(port)}/{database}"
        f"?sslmode=verify-full&sslrootcert={ca_file}"
    )


class DatabaseSecretsEngine(pulumi.ComponentResource):
    """The mount, the connection, root rotation, and one dynamic role per grant spec."""

    mount_path: pulumi.Output[str]
    connection_name: pulumi.Output[str]
    roles: pulumi.Output[list]
    static_roles: pulumi.Output[list]
    #: Where the static roles' current passwords are read (by an admin, never a client).
    static_creds_paths: pulumi.Output[list]
    #: Paths no client may read: the static credentials, the connection's config, the roles.
    protected_paths: pulumi.Output[list]
    root_rotation: pulumi.Output[str]
    #: When the root credential was last rotated (its Rotation made, Unix seconds).
    root_rotated_at: pulumi.Output[int]

    def __init__(self, name: str, args: DatabaseSecretsEngineArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:vault:DatabaseSecretsEngine", name, None, opts)
        # Children wait for what the component waits for (the database, on destroy too).
        child = pulumi.ResourceOptions(parent=self, depends_on=inherited_depends_on(opts))
        dialect = dialect_named(args.dialect)
        longest = max((s.max_ttl for s in args.specs), default=args.max_ttl_cap)
        if longest > args.max_ttl_cap:
            raise ValueError(f"a role's max_ttl ({longest}s) is over the mount's cap ({args.max_ttl_cap}s)")

        mount = vault.Mount(
            f"{name}-mount", path=args.mount_path, type="database",
            description="Dynamic database credentials",
            default_lease_ttl_seconds=min(3600, args.max_ttl_cap), max_lease_ttl_seconds=args.max_ttl_cap,
            opts=child,
        )
        # Paths and names from the args, not the resources' outputs: known at a first preview, so
        # the policy gate judges them before anything exists. The order comes from depends_on.
        # Deleted by unmounting, after its leases are revoked through it (a lone delete would strand them).
        with_mount = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(deleted_with=mount,
                                                                                depends_on=[mount]))
        connection = vault.database.SecretBackendConnection(
            f"{name}-connection", backend=args.mount_path, name=args.db_name,
            allowed_roles=[s.name for s in args.specs] + [u.username for u in args.service_users]
            + list(args.allowed_role_globs),
            verify_connection=True,
            postgresql=vault.database.SecretBackendConnectionPostgresqlArgs(
                connection_url=pulumi.Output.all(args.db_host, args.db_port, args.db_name, args.ca_file_on_vault)
                .apply(lambda a: connection_url(*a)),
                username=args.admin,
                password_wo=pulumi.Output.secret(args.admin_bootstrap_password),
                password_wo_version=args.bootstrap_password_version,
                username_template=username_template(),
                max_open_connections=MAX_OPEN_CONNECTIONS,
                password_authentication=dialect.password_authentication,
            ),
            opts=with_mount,
        )
        rotate_root_path = pulumi.Output.concat(args.mount_path, "/rotate-root/", args.db_name)
        # Replaced once the period has passed, and the endpoint with it (nothing else is). Made again with
        # every other rotation of root too, so that its created_at is the last rotation's time.
        root_rotation = Rotation(f"{name}-root-rotation", rotate_after=args.root_rotation_period,
                                 rotates=rotate_root_path, opts=pulumi.ResourceOptions(
                                     parent=self, replace_with=[connection],
                                     replacement_trigger=args.bootstrap_password_version))
        # Every create writes rotate-root: a replacement too (created before the old one's delete, a no-op).
        rotate_root = vault.generic.Endpoint(
            f"{name}-rotate-root", path=rotate_root_path,
            data_json=json.dumps({}), disable_read=True, disable_delete=True,
            opts=pulumi.ResourceOptions.merge(with_mount, pulumi.ResourceOptions(
                depends_on=[connection], replace_with=[connection, root_rotation],
                replacement_trigger=args.bootstrap_password_version,
            )),
        )
        group_roles = pulumi.Output.from_input(args.group_roles)
        roles = [
            vault.database.SecretBackendRole(
                f"{name}-role-{spec.name}", backend=args.mount_path, name=spec.name, db_name=args.db_name,
                creation_statements=group_roles.apply(
                    lambda groups, s=spec: dialect.creation_statements(s, groups[s.name])),
                revocation_statements=group_roles.apply(
                    lambda groups, s=spec: dialect.revocation_statements(groups[s.name])),
                default_ttl=spec.default_ttl, max_ttl=spec.max_ttl,
                opts=pulumi.ResourceOptions.merge(with_mount, pulumi.ResourceOptions(depends_on=[connection])),
            )
            for spec in args.specs
        ]
        static_roles = [
            vault.database.SecretBackendStaticRole(
                f"{name}-static-role-{user.username}", backend=args.mount_path, name=user.username,
                db_name=args.db_name, username=user.username, rotation_period=user.rotation_period,
                opts=pulumi.ResourceOptions.merge(with_mount, pulumi.ResourceOptions(depends_on=[rotate_root])),
            )
            for user in args.service_users
        ]
        self.mount_path = pulumi.Output.from_input(args.mount_path)
        self.connection_name = pulumi.Output.from_input(args.db_name)
        self.roles = pulumi.Output.all(*[r.name for r in roles])
        self.static_roles = pulumi.Output.all(*[r.name for r in static_roles])
        self.static_creds_paths = pulumi.Output.all(self.mount_path, self.static_roles).apply(
            lambda a: [f"{a[0]}/static-creds/{r}" for r in a[1]])
        self.protected_paths = pulumi.Output.all(
            self.mount_path, self.connection_name, self.roles, self.static_creds_paths,
        ).apply(lambda a: [*a[3], f"{a[0]}/config/{a[1]}", *[f"{a[0]}/roles/{r}" for r in a[2]]])
        # Known once the root is rotated: the checks wait for it before proving the old password dead.
        self.root_rotation = rotate_root.path
        self.root_rotated_at = root_rotation.created_at
        self.register_outputs({
            "mount_path": self.mount_path, "connection_name": self.connection_name, "roles": self.roles,
            "static_roles": self.static_roles, "static_creds_paths": self.static_creds_paths,
            "protected_paths": self.protected_paths, "root_rotation": self.root_rotation,
            "root_rotated_at": self.root_rotated_at,
        })
