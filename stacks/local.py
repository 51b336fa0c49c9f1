"""What a stack on the local target has on this machine, found from its validated config:
its server processes, and the database's dynamic users (read as the database's superuser).

`make down` proves with these that nothing is left; the tests do the same.
"""

import contextlib
from pathlib import Path
from typing import Iterator

import psycopg

from components.servers.cockroach import LocalCockroach
from components.servers.openbao import LocalOpenBao
from components.servers.postgres import LocalPostgres
from components.postgres_sql import DYNAMIC_USERS_QUERY
from stacks.config import StackConfig


def vault_server(config: StackConfig) -> LocalOpenBao:
    return LocalOpenBao(Path(config.data_dir) / "openbao", config.target.vault_port, config.target.vault_cluster_port)


def database_server(config: StackConfig) -> LocalPostgres | LocalCockroach:
    if config.database.engine == "cockroachdb":
        return LocalCockroach(Path(config.data_dir) / "cockroach", config.target.db_port, config.target.db_http_port)
    return LocalPostgres(Path(config.data_dir) / "postgres", config.target.db_port)


@contextlib.contextmanager
def superuser(config: StackConfig) -> Iterator[psycopg.Connection]:
    """The database's superuser on the application database: over PostgreSQL's Unix socket (peer
    authentication), or as CockroachDB's root with its client certificate."""
    server = database_server(config)
    if isinstance(server, LocalCockroach):
        conn = server.root_connection(config.database.name)
    else:
        conn = psycopg.connect(server.superuser_dsn(config.database.name), autocommit=True, connect_timeout=10)
    with conn:
        yield conn


def dynamic_users(config: StackConfig) -> list[str]:
    """The database users Vault's dynamic roles made that still exist."""
    with superuser(config) as conn:
        return sorted(row[0] for row in conn.execute(DYNAMIC_USERS_QUERY))


def running_servers(config: StackConfig) -> list[str]:
    """The stack's server processes still running, named."""
    running = []
    if vault_server(config).pid() is not None:
        running.append(f"OpenBao ({vault_server(config).data_dir})")
    if database_server(config).running:
        running.append(f"{config.database.engine} ({database_server(config).data_dir})")
    return running
