"""The external target: a Vault and a PostgreSQL someone else runs, reached by address.

Its servers for the root program (`servers`, `exports`), and what a stack of it has in the database
it does not run, read as its stack admin (`db_stack_admin`, verified TLS): the dynamic users Vault
made, and the roles the stack made; and what it needs of the Vault token its operator gave
(`vault_capabilities`). `make down` proves with these that nothing of the stack's is left; the tests
do the same. The functions every target has are listed in stacks/targets.py.
"""

import contextlib
from pathlib import Path
from typing import Any, Callable, ContextManager

from components.external import ExternalPostgresArgs
from components.external_rights import TeamPaths, required_capabilities
from components.postgres_sql import (DYNAMIC_USERS_QUERY, TeamDatabaseNames, drop_dynamic_user_statements,
                                     group_role_name)
from components.servers.database_access import stack_admin_connection
from stacks.config import ConfigError, StackConfig
from stacks.servers import Servers, vault_provider_on

#: Where its database runs, as the database component names it (reached by address: no container or pod).
DATABASE_LOCATION = ""
#: What `make down` leaves of a stack of this target: the servers are their operators'.
AFTER_DOWN = "no role of the stack's left (the servers are their operators')"
#: Whether its servers answer at the addresses its outputs give, nothing held open (`make up` starts
#: those that do not; `make drift` refuses to read a stack whose servers are down).
REACHED_AT_OUTPUTS = True


def _stack_admin(config: StackConfig):
    target = config.target
    admin = {"host": target.db_host, "port": target.db_port, "user": target.db_stack_admin,
             "password": target.db_stack_admin_password, "ca_pem": Path(target.db_ca_file).read_text()}
    return stack_admin_connection(admin, config.database.name)


def check_machine(config: StackConfig) -> None:
    """The CA files it names are there (ConfigError naming the field)."""
    for field in ("vault_ca_file", "db_ca_file"):
        if not Path(getattr(config.target, field)).is_file():
            raise ConfigError(field, f"no file at {getattr(config.target, field)}")


def vault_capabilities(config: StackConfig) -> dict[str, tuple[str, ...]]:
    """The capabilities the stack's Vault token needs, by path, for what this config makes there (its
    names prefixed by vault_prefix; relative to its vault_namespace, but sys/audit, which is the root
    namespace's: `from_root_namespace` writes them as a root-namespace policy does): what `up` checks
    before it makes anything in that Vault."""
    from components.vault.team_access import TeamAccessArgs

    names = config.vault.names
    return required_capabilities(
        names.database_mount, names.approle_mount, config.database.name,
        roles=[role.name for role in config.database.roles],
        static_roles=[user.username for user in config.database.service_users],
        clients={client.name: names.client_policy(client.name) for client in config.clients},
        teams=[TeamPaths(mount=names.team_mount(team.name), approle_role=TeamAccessArgs.approle_role_of(team.name),
                         policies=(names.team_policy(team.name), names.team_client_policy(team.name)))
               for team in config.teams])


def _roles(config: StackConfig, query: str, params: tuple | None = None) -> list[str]:
    with _stack_admin(config) as conn:
        return sorted(row[0] for row in conn.execute(query, params))


def drop_dynamic_users(config: StackConfig, _location: str, users: list[str]) -> None:
    """Drops dynamic users as the stack admin (their sessions ended first), as Vault's revocation would."""
    with _stack_admin(config) as conn:
        for statement in drop_dynamic_user_statements(users):
            conn.execute(statement)


def dynamic_users(config: StackConfig, _location: str = "", query: str = DYNAMIC_USERS_QUERY) -> list[str]:
    """The database users Vault's dynamic roles made that still exist (or those a narrower query of
    them lists)."""
    return _roles(config, query)


def ours_left(config: StackConfig) -> list[str]:
    """The roles the stack makes (Vault's admin, the group roles, the service users, each team's group
    and connection user) that still exist."""
    groups = [group_role_name(ExternalPostgresArgs.group_prefix, spec) for spec in config.database.roles]
    teams = [name for names in map(TeamDatabaseNames, (team.name for team in config.teams))
             for name in (names.group, names.user)]
    ours = [config.database.admin, *groups, *(user.username for user in config.database.service_users), *teams]
    return [f"role {name}" for name in _roles(config, "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (ours,))]


def left_after_destroy(config: StackConfig, _say: Callable[[str], None]) -> list[str]:
    """What of a destroyed stack is left in the database: the roles it made."""
    return ours_left(config)


def reaching_vault(_config: StackConfig) -> ContextManager[Any]:
    """Vault answers at its own address: nothing to hold open."""
    return contextlib.nullcontext()


def servers(config: StackConfig) -> Servers:
    """Vault and PostgreSQL run by someone else, reached by address with the credentials their
    operators gave (stack secrets); the stack starts nothing, and makes in the database only what it
    makes on its own servers (Vault's admin, the group roles, the service users)."""
    import pulumi

    from components.external import ExternalPostgres, ExternalVault, ExternalVaultArgs

    target = config.target
    vault_server = ExternalVault("vault", ExternalVaultArgs(
        address=target.vault_addr, ca_pem=Path(target.vault_ca_file).read_text(), ca_file=target.vault_ca_file,
        database_ca_file=target.vault_database_ca_file, token=pulumi.Output.secret(target.vault_token),
        required_capabilities=vault_capabilities(config), namespace=target.vault_namespace,
    ))
    database = ExternalPostgres("db", ExternalPostgresArgs(
        host=target.db_host, port=target.db_port, database=config.database.name,
        ca_pem=Path(target.db_ca_file).read_text(), stack_admin=target.db_stack_admin,
        stack_admin_password=pulumi.Output.secret(target.db_stack_admin_password), admin=config.database.admin,
        grant_specs=config.database.roles, service_users=config.database.service_user_roles,
        team_grants=tuple(team.grant for team in config.teams),
    ))
    return Servers(vault_server, database, vault_provider_on(vault_server))


def exports(config: StackConfig, _servers: Servers) -> dict[str, Any]:
    """With a vault_namespace, `vault_namespace`: a client sends it as its namespace (the
    X-Vault-Namespace header; hvac's `namespace=`), its AppRole login and creds paths being inside it.
    Without one, nothing."""
    namespace = config.target.vault_namespace
    return {"vault_namespace": namespace} if namespace else {}


def rotate_audit(config: StackConfig, _keep: int) -> list[str]:
    """Refused: the Vault is its operator's, and so are its audit devices."""
    from components.servers.openbao import AuditRotationError

    raise AuditRotationError(f"the external target's Vault ({config.target.vault_addr}) is its operator's: its audit "
                             "devices and their logs are rotated by whoever runs it, not by this stack")


def backups(_config: StackConfig):
    """`make backup` and `make restore`: refused (stacks/backups.py)."""
    from stacks.backups import BackupError

    raise BackupError("its Vault and database are its operators', who back them up; the stack holds only its "
                      "state and what it made in them")
