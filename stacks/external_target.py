"""What a stack on the external target has in the database it does not run, read as its stack admin
(`db_stack_admin`, verified TLS): the dynamic users Vault made, and the roles the stack made; and what
it needs of the Vault token its operator gave (`vault_capabilities`).

`make down` proves with these that nothing of the stack's is left; the tests do the same.
"""

from pathlib import Path

from components.external import ExternalPostgresArgs
from components.external_rights import required_capabilities
from components.postgres_sql import DYNAMIC_USERS_QUERY, drop_dynamic_user_statements, group_role_name
from components.servers.database_access import stack_admin_connection
from stacks.config import StackConfig


def _stack_admin(config: StackConfig):
    target = config.target
    admin = {"host": target.db_host, "port": target.db_port, "user": target.db_stack_admin,
             "password": target.db_stack_admin_password, "ca_pem": Path(target.db_ca_file).read_text()}
    return stack_admin_connection(admin, config.database.name)


def vault_capabilities(config: StackConfig) -> dict[str, tuple[str, ...]]:
    """The capabilities the stack's Vault token needs, by path, for what this config makes there (its
    names prefixed by vault_prefix): what `up` checks before it makes anything in that Vault."""
    names = config.vault.names
    return required_capabilities(
        names.database_mount, names.approle_mount, config.database.name,
        roles=[role.name for role in config.database.roles],
        static_roles=[user.username for user in config.database.service_users],
        clients={client.name: names.client_policy(client.name) for client in config.clients})


def _roles(config: StackConfig, query: str, params: tuple | None = None) -> list[str]:
    with _stack_admin(config) as conn:
        return sorted(row[0] for row in conn.execute(query, params))


def drop_dynamic_users(config: StackConfig, users: list[str]) -> None:
    """Drops dynamic users as the stack admin (their sessions ended first), as Vault's revocation would."""
    with _stack_admin(config) as conn:
        for statement in drop_dynamic_user_statements(users):
            conn.execute(statement)


def dynamic_users(config: StackConfig, query: str = DYNAMIC_USERS_QUERY) -> list[str]:
    """The database users Vault's dynamic roles made that still exist (or those a narrower query of
    them lists)."""
    return _roles(config, query)


def ours_left(config: StackConfig) -> list[str]:
    """The roles the stack makes (Vault's admin, the group roles, the service users) that still exist."""
    ours = [config.database.admin, *(group_role_name(ExternalPostgresArgs.group_prefix, spec) for spec in config.database.roles),
            *(user.username for user in config.database.service_users)]
    return [f"role {name}" for name in _roles(config, "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (ours,))]
