"""The database server of the stack when it is CockroachDB: a secure single node (the `local` target).

    node = CockroachNode("db", CockroachNodeArgs(
        data_dir=".data/prod/cockroach", port=26257, http_port=26258, grant_specs=specs))
    node.group_roles  # {"reader": "dbcreds_group_reader", ...}, as PostgresServer's

It has PostgresServer's outputs, so the secrets engine, clients and checks do
not care which database runs. Its certificates come from a CA of its own
(`components.cockroach_certs`): node, root and a client certificate for each
of `sql_users`; or, given `certificates` and `ca_pem`, from Vault's PKI
(`components.cockroach_certs.certs_directory`). Needs a `cockroach` binary (preview fails, naming it, without one).
"""

from dataclasses import dataclass
from typing import Optional

import pulumi

from components.defaults import CA_VALIDITY_HOURS, CERT_VALIDITY_HOURS, DATABASE, DB_ADMIN, GROUP_PREFIX
from components.cockroach_certs import CockroachCertificates, CockroachCertificatesArgs
from components.database_component import DatabaseComponent, new_password
from components.local.providers.cockroach_node import LocalCockroachNode
from components.servers.server_running import ServerRunning, keeper_name
from components.grant_specs import GrantSpec
from components.servers.process import LOOPBACK
from components.postgres_sql import group_role_name


@dataclass(frozen=True)
class CockroachNodeArgs:
    data_dir: str
    port: int
    #: The DB Console's port (CockroachDB always serves one).
    http_port: int
    database: str = DATABASE
    #: The admin Vault connects as (CREATEROLE, owner of the database; not in the admin role).
    admin: str = DB_ADMIN
    grant_specs: tuple[GrantSpec, ...] = ()
    group_prefix: str = GROUP_PREFIX
    #: SQL users who get a client certificate (root always does).
    sql_users: tuple[str, ...] = ()
    node_addresses: tuple[str, ...] = ("127.0.0.1", "localhost")
    ca_validity_hours: int = CA_VALIDITY_HOURS
    cert_validity_hours: int = CERT_VALIDITY_HOURS
    #: The certs directory's files made elsewhere (Vault's PKI), and the CA chain that verifies the
    #: node. None: a CA of the cluster's own.
    certificates: Optional[pulumi.Input[dict]] = None
    ca_pem: Optional[pulumi.Input[str]] = None


class CockroachNode(DatabaseComponent):
    """A secure CockroachDB node with its own certificates, admin, database and group roles."""

    #: The certs directory's files (secret).
    certs: pulumi.Output[dict]

    def __init__(self, name: str, args: CockroachNodeArgs, opts: Optional[pulumi.ResourceOptions] = None):
        # The type keeps its first name: it is in every URN of a stack's state.
        super().__init__("dbcreds:database:CockroachNode", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        groups = {group_role_name(args.group_prefix, spec): spec for spec in args.grant_specs}
        if args.admin in groups:
            raise ValueError(f"a grant spec's group role would be the admin role {args.admin!r}")
        if args.certificates is None:
            certs = CockroachCertificates(f"{name}-certs", CockroachCertificatesArgs(
                node_addresses=args.node_addresses, sql_users=args.sql_users,
                ca_validity_hours=args.ca_validity_hours, cert_validity_hours=args.cert_validity_hours), opts=child)
            files, ca_pem = certs.files, certs.ca_cert_pem
        elif args.ca_pem is None or args.sql_users:
            raise ValueError("certificates: give ca_pem with them, and issue the sql_users' certificates there too")
        else:
            files, ca_pem = pulumi.Output.secret(args.certificates), args.ca_pem
        password = new_password(f"{name}-admin-bootstrap", self)
        node = LocalCockroachNode(
            f"{name}-node", data_dir=args.data_dir, port=args.port, http_port=args.http_port,
            database=args.database, admin=args.admin, admin_password=password, files=files,
            groups=groups, opts=child,
        )
        # Started again when a restart stopped it.
        ServerRunning(keeper_name(name), "cockroach", data_dir=args.data_dir, port=args.port,
                      second_port=args.http_port, opts=pulumi.ResourceOptions(parent=self, depends_on=[node]))
        # Names and address from the args, known at a first preview; what uses them waits for
        # this component (the node makes the group roles).
        self._register_database(
            host=LOOPBACK, port=args.port, database=args.database, admin=args.admin,
            admin_bootstrap_password=node.admin_password,
            admin_bootstrap_password_version=node.admin_password_version, ca_pem=ca_pem,
            group_roles={s.name: g for g, s in groups.items()}, certs=files,
        )
