"""Vault and PostgreSQL run by someone else (the `external` target): the stack starts nothing.

    vault_server = ExternalVault("vault", ExternalVaultArgs(
        address="https://vault.internal:8200", ca_pem=vault_ca, ca_file="/etc/dbcreds/vault-ca.crt",
        database_ca_file="/etc/openbao/tls/db-ca.crt", token=token))
    database = ExternalPostgres("db", ExternalPostgresArgs(
        host="db.internal", port=5432, database="app", ca_pem=db_ca, stack_admin="postgres",
        stack_admin_password=master_password, grant_specs=specs))

Both expose what the stack's own servers expose (`VaultComponent`,
`DatabaseComponent`), so the secrets engine, clients and post-deploy checks are
configured on them exactly as on the other targets.

- The Vault: reached at its address with a token its operator gave (secret), its
  listener verified against its CA. First the token's capabilities are read on
  every path the stack uses (`VaultTokenRights`, `required_capabilities`), at
  every `up` (and every preview once the stack has it): a token lacking one is refused, naming each path and
  what it lacks there, before anything is configured in that Vault. Its audit
  devices are read at every `up`: a Vault with none is refused before anything
  is configured in it.
- The database: the stack connects as the stack admin its operator gave (an RDS
  master: may create roles, owns the application's tables), verified TLS, and
  first finds at every `up` (and preview, once made) that it may (`StackAdminRights`:
  CREATEROLE, pg_signal_backend to grant, ownership of every schema, table and
  sequence the grant specs grant on; a refusal names each one it lacks, before
  anything is made in the database). Then it makes what it makes on a local
  server: the admin Vault connects as (whose random first password Vault
  rotates at once), the group role of each grant spec with its grants (made as
  the stack admin, the tables' owner), and the service users. `pulumi destroy`
  drops them again.
"""

from dataclasses import dataclass, field
from typing import Mapping, Optional

import pulumi

from components.defaults import DB_ADMIN, GROUP_PREFIX
from components.database_component import DatabaseComponent, new_password
from components.dynamic.external_preflight import StackAdminRights, VaultTokenRights
from components.dynamic.postgres_admin import PostgresAdminRole
from components.dynamic.postgres_group import PostgresGroupRole
from components.dynamic.postgres_login_role import PostgresLoginRole
from components.dynamic.vault_audit import VaultAuditDevices
from components.external_rights import by_namespace
from components.grant_specs import GrantSpec
from components.postgres_sql import group_role_name
from components.vault_component import VaultComponent

#: What reading the audit devices takes (listing them needs sudo).
AUDIT_READ = {"sys/audit": ("read", "sudo")}


@dataclass(frozen=True)
class ExternalVaultArgs:
    #: https://host:port
    address: pulumi.Input[str]
    #: The CA that verifies its listener (PEM), and the same as a file on this host (the Vault provider
    #: takes a file).
    ca_pem: pulumi.Input[str]
    ca_file: pulumi.Input[str]
    #: Path, on the Vault's host, of the CA that verifies the database (its operator puts it there).
    database_ca_file: pulumi.Input[str]
    #: A token allowed to mount engines and auth methods and write policies (secret).
    token: pulumi.Input[str]
    #: The capabilities the token must have, by path (`components.external_rights.required_capabilities`);
    #: the audit devices' read is always among them.
    required_capabilities: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: The OpenBao namespace the stack works in (empty: the root namespace, no namespace header sent):
    #: the capabilities are checked there, the audit devices read in the root namespace (OpenBao keeps
    #: them there only).
    namespace: str = ""


class ExternalVault(VaultComponent):
    """A Vault run by its operator (outputs: see `VaultComponent`; `audit_log`: its audit devices;
    `namespace`, a plain value: the namespace the stack works in, empty for the root one)."""

    def __init__(self, name: str, args: ExternalVaultArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:vault:ExternalVault", name, None, opts)
        self.namespace = args.namespace
        if args.namespace:
            # The audit devices are the root namespace's; everything else is the namespace's.
            inside, in_root = by_namespace({**AUDIT_READ, **args.required_capabilities})
            rights = VaultTokenRights(f"{name}-token-rights", address=args.address, ca_pem=args.ca_pem,
                                      token=args.token, required=list(inside.items()), namespace=args.namespace,
                                      root_required=list(in_root.items()), opts=pulumi.ResourceOptions(parent=self))
        else:
            required = {**AUDIT_READ, **args.required_capabilities}
            rights = VaultTokenRights(f"{name}-token-rights", address=args.address, ca_pem=args.ca_pem,
                                      token=args.token, required=list(required.items()),
                                      opts=pulumi.ResourceOptions(parent=self))
        # What reads or writes with the token waits for it: the provider waits for this component.
        audit = VaultAuditDevices(f"{name}-audit", address=args.address, ca_pem=args.ca_pem, token=args.token,
                                  opts=pulumi.ResourceOptions(parent=self, depends_on=[rights]))
        self._register_vault(
            address=args.address, ca_pem=args.ca_pem, ca_file=args.ca_file, database_ca_file=args.database_ca_file,
            admin_token=args.token, audit_log=audit.devices.apply(", ".join),
        )


@dataclass(frozen=True)
class ExternalPostgresArgs:
    host: pulumi.Input[str]
    port: pulumi.Input[int]
    database: pulumi.Input[str]
    #: The CA that verifies the server (PEM).
    ca_pem: pulumi.Input[str]
    #: The role the stack makes its roles and grants as (an RDS master), and its password (secret).
    stack_admin: pulumi.Input[str]
    stack_admin_password: pulumi.Input[str]
    #: The non-superuser admin the stack makes for Vault to connect as (CREATEROLE; Vault rotates it).
    admin: str = DB_ADMIN
    #: One group role per spec, holding its privileges; dynamic users join these.
    grant_specs: tuple[GrantSpec, ...] = ()
    group_prefix: str = GROUP_PREFIX
    #: Pre-existing service users for Vault static roles: user name -> the grant spec whose group it joins.
    service_users: tuple[tuple[str, str], ...] = ()
    #: The teams' grants: what the stack admin must own for their groups, and that it must be able to
    #: create their functions' schemas (`components.vault.team_access` makes them).
    team_grants: tuple[GrantSpec, ...] = ()


class ExternalPostgres(DatabaseComponent):
    """PostgreSQL run by its operator: the stack's admin for Vault, group roles and service users in it
    (outputs: see `DatabaseComponent`)."""

    def __init__(self, name: str, args: ExternalPostgresArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:database:ExternalPostgres", name, None, opts)
        stack_admin = pulumi.Output.all(
            host=args.host, port=args.port, user=args.stack_admin, password=args.stack_admin_password,
            ca_pem=args.ca_pem)
        groups_by_spec = {spec.name: group_role_name(args.group_prefix, spec) for spec in args.grant_specs}
        if args.admin in groups_by_spec.values():
            raise ValueError(f"admin {args.admin!r} is also a grant spec's group role name")
        for user, spec_name in args.service_users:
            if spec_name not in groups_by_spec:
                raise ValueError(f"service user {user!r}: no grant spec named {spec_name!r}")
        # Nothing is made in the database before the stack admin is found to have what it takes.
        rights = StackAdminRights(f"{name}-stack-admin-rights", database=args.database, stack_admin=stack_admin,
                                  specs=(*args.grant_specs, *args.team_grants), makes_schemas=bool(args.team_grants),
                                  opts=pulumi.ResourceOptions(parent=self))
        child = pulumi.ResourceOptions(parent=self, depends_on=[rights])
        password = new_password(f"{name}-admin-bootstrap", self)
        admin = PostgresAdminRole(f"{name}-admin", database=args.database, username=args.admin, password=password,
                                  stack_admin=stack_admin, opts=child)
        groups = {
            spec.name: PostgresGroupRole(
                f"{name}-group-{spec.name}", database=args.database, admin=args.stack_admin,
                group=groups_by_spec[spec.name], spec=spec, stack_admin=stack_admin, opts=child)
            for spec in args.grant_specs
        }
        for user, spec_name in args.service_users:
            PostgresLoginRole(f"{name}-user-{user}", database=args.database, username=user,
                              group=groups[spec_name].group, stack_admin=stack_admin, opts=child)
        # Names from the args, known at a first preview (the policy gate judges the roles built on
        # them); what uses them waits for this component (depends_on), so for its children.
        self.stack_access, self.owner = {"stack_admin": stack_admin}, args.stack_admin
        self._register_database(
            host=args.host, port=args.port, database=args.database, admin=args.admin,
            admin_bootstrap_password=password, ca_pem=args.ca_pem, group_roles=groups_by_spec,
        )
