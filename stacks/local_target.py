"""What a stack on the local target has on this machine, found from its validated config:
its server processes, and the database's dynamic users (read as the database's superuser).

`make down` proves with these that nothing is left; the tests do the same.
"""

import contextlib
import time
from pathlib import Path
from typing import Iterator

import psycopg

from components.servers.cockroach import LocalCockroach
from components.servers.openbao import LocalOpenBao, node_data_dir, node_state
from components.servers.postgres import LocalPostgres
from components.postgres_sql import DYNAMIC_USERS_QUERY, drop_dynamic_user_statements
from stacks.config import StackConfig


def vault_nodes(config: StackConfig) -> list[LocalOpenBao]:
    """The stack's OpenBao nodes (one, or a raft cluster's)."""
    return [LocalOpenBao(Path(node_data_dir(f"{config.data_dir}/openbao", i)), port, cluster_port)
            for i, (port, cluster_port) in enumerate(config.target.vault_node_ports(config.vault.nodes))]


def vault_server(config: StackConfig) -> LocalOpenBao:
    """The first (or only) node."""
    return vault_nodes(config)[0]


#: How long a cluster may take to elect an active node before it is taken for one that lost its quorum.
ELECTION_SECONDS = 15


def vault_quorum_problem(config: StackConfig) -> str:
    """Why the stack's OpenBao cluster cannot serve and `up` cannot bring it back (empty when it can):
    no node is active, and fewer than a majority of the nodes answer or could be started (a node that
    runs but does not answer, hung or cut off, cannot be)."""
    nodes = vault_nodes(config)
    if len(nodes) == 1 or not any(node.running for node in nodes):
        return ""  # A single server, or none running yet (a first up, a machine restart): up starts them.
    quorum = len(nodes) // 2 + 1
    deadline = time.monotonic() + ELECTION_SECONDS
    while True:
        states = {node.address: node_state(node.client(timeout=2)) if node.running else "stopped" for node in nodes}
        if "active" in states.values():
            return ""
        usable = [a for a, state in states.items()
                  if state in ("standby", "leaderless", "sealed", "uninitialised", "stopped")]
        if len(usable) >= quorum and "stopped" in states.values():
            return ""  # up starts the stopped ones, and they elect a leader.
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    if len(usable) >= quorum:
        return ""  # Enough nodes answer: a leader is still being elected; up goes on and waits.
    hung = [a for a, state in states.items() if state == "down"]
    return (f"OpenBao's raft cluster has lost its quorum: {len(nodes)} nodes need {quorum} voters to elect an "
            f"active node, and only {len(usable)} can serve ({', '.join(f'{a}: {s}' for a, s in states.items())}); "
            f"{' and '.join(hung)} run but do not answer. Bring one back (a hung process: restart it; a lost "
            "machine: see the README, two nodes lost); up cannot.")


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


def dynamic_users(config: StackConfig, query: str = DYNAMIC_USERS_QUERY) -> list[str]:
    """The database users Vault's dynamic roles made that still exist (or those a narrower query of
    them lists: the expired ones, say)."""
    with superuser(config) as conn:
        return sorted(row[0] for row in conn.execute(query))


def drop_dynamic_users(config: StackConfig, users: list[str]) -> None:
    """Drops dynamic users as the superuser (their sessions ended first), as Vault's revocation would."""
    with superuser(config) as conn:
        for statement in drop_dynamic_user_statements(users):
            conn.execute(statement)


def running_servers(config: StackConfig) -> list[str]:
    """The stack's server processes still running, named."""
    running = [f"OpenBao ({node.data_dir})" for node in vault_nodes(config) if node.pid() is not None]
    if database_server(config).running:
        running.append(f"{config.database.engine} ({database_server(config).data_dir})")
    return running
