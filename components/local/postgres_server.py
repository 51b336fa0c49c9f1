"""The database server of the stack: PostgreSQL as a local process (the `local` target).

    db = PostgresServer("db", PostgresServerArgs(
        data_dir="/srv/postgres", port=5432, ca_pem=ca, cert_pem=cert, key_pem=key, grant_specs=specs))
    db.host, db.port, db.admin, db.admin_bootstrap_password (secret), db.group_roles
"""

from dataclasses import dataclass
from typing import Optional

import pulumi

from components.defaults import DATABASE, DB_ADMIN, GROUP_PREFIX
from components.database_component import DatabaseComponent, new_password
from components.dynamic.postgres_group import PostgresGroupRole
from components.dynamic.postgres_login_role import PostgresLoginRole
from components.local.providers.postgres_server import LocalPostgresServer
from components.servers.server_running import ServerRunning, keeper_name
from components.grant_specs import GrantSpec
from components.servers.process import LOOPBACK
from components.postgres_sql import group_role_name


@dataclass(frozen=True)
class PostgresServerArgs:
    """Where the server keeps its data and listens, what it serves, and its TLS material."""

    data_dir: str
    port: int
    ca_pem: pulumi.Input[str]
    cert_pem: pulumi.Input[str]
    key_pem: pulumi.Input[str]
    database: str = DATABASE
    #: The non-superuser admin Vault connects as (CREATEROLE, owner of the database).
    admin: str = DB_ADMIN
    #: One group role per spec, holding its privileges; dynamic users join these.
    grant_specs: tuple[GrantSpec, ...] = ()
    group_prefix: str = GROUP_PREFIX
    #: Pre-existing service users for Vault static roles: user name -> the grant spec whose group it joins.
    service_users: tuple[tuple[str, str], ...] = ()


class PostgresServer(DatabaseComponent):
    """PostgreSQL 15 on 127.0.0.1: TLS and SCRAM only, an admin with a random bootstrap password,
    the application database with the demo schema.

    `admin_bootstrap_password` (secret) is what Vault first connects with; Vault
    rotates it at once, after which it no longer works. `group_roles` maps each
    grant spec's name to its group role.
    """

    data_dir: pulumi.Output[str]

    def __init__(self, name: str, args: PostgresServerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:database:PostgresServer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        password = new_password(f"{name}-admin-bootstrap", self)
        server = LocalPostgresServer(
            f"{name}-postgres", data_dir=args.data_dir, port=args.port, database=args.database,
            admin=args.admin, admin_password=password, ca_pem=args.ca_pem,
            cert_pem=args.cert_pem, key_pem=args.key_pem, opts=child,
        )
        # Started again when a restart stopped it; what works in the database waits for it.
        running = ServerRunning(keeper_name(name), "postgres", data_dir=args.data_dir, port=args.port,
                                opts=pulumi.ResourceOptions(parent=self, depends_on=[server]))
        child = pulumi.ResourceOptions(parent=self, depends_on=[running])
        for spec in args.grant_specs:
            if group_role_name(args.group_prefix, spec) == args.admin:
                raise ValueError(f"grant spec {spec.name!r}: its group role would be the admin role {args.admin!r}")
        groups = {
            spec.name: PostgresGroupRole(
                f"{name}-group-{spec.name}", data_dir=args.data_dir, port=server.port,
                database=server.database, admin=server.admin,
                group=group_role_name(args.group_prefix, spec), spec=spec, opts=child,
            )
            for spec in args.grant_specs
        }
        for user, spec_name in args.service_users:
            if spec_name not in groups:
                raise ValueError(f"service user {user!r}: no grant spec named {spec_name!r}")
            PostgresLoginRole(f"{name}-user-{user}", data_dir=args.data_dir, port=server.port,
                              database=server.database, username=user, group=groups[spec_name].group, opts=child)
        self.stack_access, self.owner = {"data_dir": args.data_dir, "port": args.port}, args.admin
        # Names and address from the args, known at a first preview (the policy gate judges what
        # is built on them then); what uses them waits for this component.
        self._register_database(
            host=LOOPBACK, port=args.port, database=args.database, admin=args.admin,
            admin_bootstrap_password=server.admin_password,
            admin_bootstrap_password_version=server.admin_password_version, ca_pem=args.ca_pem,
            group_roles={role: group_role_name(args.group_prefix, spec)
                         for role, spec in zip(groups, args.grant_specs)},
            # Where its superuser's socket is, on this host (a team's program makes its roles there).
            data_dir=pulumi.Output.from_input(args.data_dir),
        )
