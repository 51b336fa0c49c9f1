"""The local target: OpenBao and PostgreSQL (or CockroachDB) as processes on this machine's 127.0.0.1.

Its servers for the root program (`servers`, `exports`), and what a stack of it has on this machine,
found from its validated config: its server processes, and the database's dynamic users (read as the
database's superuser). `make down` proves with these that nothing is left; the tests do the same.
The functions every target has are listed in stacks/targets.py.
"""

import contextlib
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator

import psycopg

from components.servers.cockroach import LocalCockroach
from components.local.providers.openbao_server import RESOURCE_TYPE as OPENBAO_SERVER_TYPE
from components.servers.openbao import (
    INIT_TIMEOUT_SECONDS,
    LocalOpenBao,
    node_data_dir,
    node_state,
    wait_unsealed,
)
from components.servers.postgres import LocalPostgres
from components.postgres_sql import DYNAMIC_USERS_QUERY, drop_dynamic_user_statements
from stacks.backups import BackupError, Restored, ServerBackups, force_snapshot, serve_restored, server_outputs
from stacks.config import ConfigError, StackConfig
from stacks.servers import Servers, vault_provider_on

#: Where its database runs, as the database component names it (no container or pod: this machine).
DATABASE_LOCATION = ""
#: What `make down` leaves of a stack of this target.
AFTER_DOWN = "no server left"
#: Whether its servers answer at the addresses its outputs give, nothing held open (`make up` starts
#: those that do not; `make drift` refuses to read a stack whose servers are down).
REACHED_AT_OUTPUTS = True
#: pg_dumpall and psql: a dump or a load of the stack's database may take this long.
DATABASE_SECONDS = 1800


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


def check_machine(config: StackConfig) -> None:
    """The database's server binaries, the OpenBao binary the stack names, and a cluster that can still
    elect a leader: what `up` could not get past (ConfigError naming the field)."""
    from components.servers.cockroach import LocalCockroachError, cockroach_binary
    from components.servers.openbao import LocalOpenBaoError, binary_version
    from components.servers.postgres import PG_BIN

    if config.database.engine == "postgresql" and not (PG_BIN / "postgres").exists():
        raise ConfigError("db_engine", f"postgresql runs here as a local process: no PostgreSQL server binaries in "
                                       f"{PG_BIN}: run make bootstrap (or set DBCREDS_PG_BIN)")
    if config.database.engine == "cockroachdb":
        try:
            cockroach_binary()
        except LocalCockroachError as error:
            raise ConfigError("db_engine", f"cockroachdb runs here as a local process: {error}") from None
    if config.vault.binary:
        try:
            binary_version(Path(config.vault.binary))
        except LocalOpenBaoError as error:
            raise ConfigError("vault_binary", str(error)) from None
    if config.vault.highly_available:
        problem = vault_quorum_problem(config)
        if problem:
            raise ConfigError("vault_nodes", problem)


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


def dynamic_users(config: StackConfig, _location: str = "", query: str = DYNAMIC_USERS_QUERY) -> list[str]:
    """The database users Vault's dynamic roles made that still exist (or those a narrower query of
    them lists: the expired ones, say)."""
    with superuser(config) as conn:
        return sorted(row[0] for row in conn.execute(query))


def drop_dynamic_users(config: StackConfig, _location: str, users: list[str]) -> None:
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


def left_after_destroy(config: StackConfig, _say: Callable[[str], None]) -> list[str]:
    """What of a destroyed stack is left on this machine: its server processes."""
    return running_servers(config)


def reaching_vault(_config: StackConfig) -> ContextManager[Any]:
    """Vault answers at its own address: nothing to hold open."""
    return contextlib.nullcontext()


def servers(config: StackConfig) -> Servers:
    """OpenBao and PostgreSQL (or CockroachDB) as processes on 127.0.0.1, and the Vault provider.

    With `db_certificates: vault_pki`, Vault comes first: its PKI engine issues
    the database's certificate (CockroachDB's node and client.root ones), from an
    intermediate of the bootstrap CA.
    """
    import dataclasses

    import pulumi

    from components.bootstrap_pki import BootstrapPki, BootstrapPkiArgs
    from components.cockroach_certs import COCKROACH_PKI, certs_directory
    from components.local.cockroach_node import CockroachNode, CockroachNodeArgs
    from components.local.postgres_server import PostgresServer, PostgresServerArgs
    from components.local.vault_server import VaultNodeArgs, VaultServer, VaultServerArgs
    from components.vault.database_pki import DatabasePki, DatabasePkiArgs

    nodes = config.target.vault_node_ports(config.vault.nodes)
    pki = BootstrapPki("bootstrap", BootstrapPkiArgs(
        ca_common_name=config.pki.ca_common_name, ca_validity_hours=config.pki.ca_validity_hours,
        server_cert_validity_hours=config.pki.cert_validity_hours,
        server_cert_renewal_hours=config.pki.cert_renewal_hours,
        database_certificate=config.database.certificates == "bootstrap",
        # A cluster's nodes each have a name of their own on their certificate.
        vault_node_names=tuple((f"openbao-{i}",) for i in range(len(nodes))) if len(nodes) > 1 else ((),),
    ))
    # CockroachDB with a CA of its own comes first: Vault's connection verifies against that CA.
    # Every other database's chain ends at the bootstrap CA.
    own_ca = config.database.engine == "cockroachdb" and config.database.certificates == "bootstrap"
    cockroach = CockroachNodeArgs(
        data_dir=f"{config.data_dir}/cockroach", port=config.target.db_port, http_port=config.target.db_http_port,
        database=config.database.name, admin=config.database.admin, grant_specs=config.database.roles,
        ca_validity_hours=config.pki.ca_validity_hours, cert_validity_hours=config.pki.cert_validity_hours,
    )
    if own_ca:
        database = CockroachNode("db", cockroach)
    vault_server = VaultServer("vault", VaultServerArgs(
        data_dir=f"{config.data_dir}/openbao", ca_pem=pki.ca_cert_pem,
        nodes=tuple(VaultNodeArgs(port, cluster_port, cert.cert_pem, cert.private_key_pem)
                    for (port, cluster_port), cert in zip(nodes, pki.vault_node_certs)),
        database_ca_pem=database.ca_pem if own_ca else pki.ca_cert_pem,
        key_shares=config.vault.key_shares, key_threshold=config.vault.key_threshold, seal=config.vault.seal,
        seal_key=pulumi.Output.secret(config.vault.seal_key) if config.vault.seal_key else None,
        binary=config.vault.binary,
    ))
    provider = vault_provider_on(vault_server)
    db_pki = None
    if config.database.certificates == "vault_pki":
        db_pki = DatabasePki("db-pki", DatabasePkiArgs(
            bootstrap_ca_cert_pem=pki.ca_cert_pem, bootstrap_ca_private_key_pem=pki.ca_private_key_pem,
            cert_ttl=config.pki.db_cert_validity or config.pki.cert_validity_hours * 3600,
            intermediate_ttl=config.pki.ca_validity_hours * 3600,
            cert_renew_before=config.pki.cert_renew_before,
            intermediate_renewal_hours=config.pki.intermediate_renewal_hours,
            **(COCKROACH_PKI if config.database.engine == "cockroachdb" else {}),
        ), opts=pulumi.ResourceOptions(providers=[provider], depends_on=[vault_server]))
    if config.database.engine == "postgresql":
        certificate = (pki.database_cert_pem, pki.database_private_key_pem, pki.ca_cert_pem)
        if db_pki is not None:
            certificate = (db_pki.cert_pem, db_pki.private_key_pem, db_pki.ca_chain_pem)
        database = PostgresServer("db", PostgresServerArgs(
            data_dir=f"{config.data_dir}/postgres", port=config.target.db_port, database=config.database.name,
            admin=config.database.admin, cert_pem=certificate[0], key_pem=certificate[1], ca_pem=certificate[2],
            grant_specs=config.database.roles, service_users=config.database.service_user_roles,
        ))
    elif not own_ca:
        database = CockroachNode("db", dataclasses.replace(
            cockroach, certificates=certs_directory(db_pki), ca_pem=db_pki.ca_chain_pem))
    return Servers(vault_server, database, provider)


def exports(config: StackConfig, servers: Servers) -> dict[str, Any]:
    """The outputs only this target has: the OpenBao release its nodes run, and PostgreSQL's data folder
    (a team's program on this host reads it)."""
    data_dir = {"db_data_dir": servers.database.data_dir} if config.database.engine == "postgresql" else {}
    return {"vault_version": servers.vault.version, **data_dir}


def rotate_audit(config: StackConfig, keep: int) -> list[str]:
    """Each OpenBao node moves its audit log aside (`audit/audit.log.<UTC time>` in its folder) and
    reopens it on SIGHUP, losing no line; the `keep` newest moved logs of each node are kept. The moved
    files, one per node that had lines to move."""
    moved = [node.rotate_audit_log(keep) for node in vault_nodes(config)]
    return [str(path) for path in moved if path is not None]


class LocalBackups(ServerBackups):
    """The local target's servers: processes on this machine, their data in the stack's data folder.
    A restore starts them fresh from the restored state's server resources (toolchain/backup_file.py's
    `restore_steps`)."""

    def __init__(self, config: StackConfig):
        if config.database.engine == "cockroachdb":
            raise BackupError("the stack's database is CockroachDB: backup and restore are built for PostgreSQL only")
        self.config = config

    def dump_database(self, _outputs: dict[str, Any], target: Path) -> None:
        """pg_dumpall as the superuser over the server's Unix socket (peer authentication)."""
        from components.servers.postgres import PG_BIN, SUPERUSER

        server = database_server(self.config)
        if not server.running:
            raise BackupError(f"PostgreSQL in {server.data_dir} is not running: make up first")
        result = subprocess.run([str(PG_BIN / "pg_dumpall"), "--host", str(server.data_dir), "--port",
                                 str(server.port), "--username", SUPERUSER, "--no-password", "--file", str(target)],
                                capture_output=True, text=True, timeout=DATABASE_SECONDS)
        if result.returncode != 0:
            raise BackupError(f"pg_dumpall failed: {result.stderr.strip()}")

    def running(self) -> list[str]:
        return running_servers(self.config)

    def data(self) -> list[str]:
        folders = [node.data_dir for node in vault_nodes(self.config)]
        folders.append(database_server(self.config).data_dir)
        return [str(f) for f in folders if f.exists() and any(f.iterdir())]

    def steps(self, stop_first: bool) -> list:
        from stacks.backups import restore_steps

        return restore_steps(self.config.vault.nodes, self.config.vault.seal, stop_first)

    def run(self, step: str, restored: Restored | None) -> None:
        from stacks.backups import DATABASE_DUMP, RAFT_SNAPSHOT

        if step == "stop":
            self._remove_server_data()
        elif step == "postgres":
            self._restore_database(restored.resources, restored.parts / DATABASE_DUMP)
        elif step == "openbao":
            first = vault_nodes(self.config)[0]
            self._configure(first, restored.resources)
            first.start()
            force_snapshot(first.client(timeout=INIT_TIMEOUT_SECONDS), restored.parts / RAFT_SNAPSHOT,
                           self.config.vault.seal)
        elif step == "unseal":
            first = vault_nodes(self.config)[0]
            keys = server_outputs(restored.resources, first.data_dir, OPENBAO_SERVER_TYPE)["unseal_keys"]
            serve_restored(lambda token: first.client(token, timeout=5), restored.outputs["vault_admin_token"],
                           keys, self.config.vault.seal, first.address)
        elif step == "join":
            # A cluster's other nodes, empty, join the restored first node and unseal themselves.
            for node in vault_nodes(self.config)[1:]:
                self._configure(node, restored.resources)
                node.start()
                wait_unsealed(node.client(), INIT_TIMEOUT_SECONDS)

    def _remove_server_data(self) -> None:
        """Stops the stack's servers and removes their data folders (PostgreSQL's may be a link to where
        its data really is)."""
        for node in vault_nodes(self.config):
            node.stop()
            shutil.rmtree(node.data_dir, ignore_errors=True)
        database = database_server(self.config)
        database.stop()
        shutil.rmtree(database.data_dir.resolve(), ignore_errors=True)
        if database.data_dir.is_symlink():
            database.data_dir.unlink()

    def _restore_database(self, resources: list[dict], dump: Path) -> None:
        from components.servers.postgres import PG_BIN, SUPERUSER
        from stacks.backups import unexpected_load_errors

        server = database_server(self.config)
        props = server_outputs(resources, server.data_dir)
        server = LocalPostgres(server.data_dir, int(props["port"]))
        server.initdb(props["cert_pem"], props["key_pem"])
        server.start()
        result = subprocess.run([str(PG_BIN / "psql"), "--no-psqlrc", "--quiet", "--host", str(server.data_dir),
                                 "--port", str(server.port), "--username", SUPERUSER, "--dbname", "postgres",
                                 "--file", str(dump)],
                                capture_output=True, text=True, timeout=DATABASE_SECONDS)
        errors = unexpected_load_errors(result.stderr)
        if result.returncode != 0 or errors:
            raise BackupError(f"loading the dump into PostgreSQL failed: "
                              f"{'; '.join(errors[:5]) or result.stderr[-2000:]}")

    @staticmethod
    def _configure(node: LocalOpenBao, resources: list[dict]) -> None:
        """The node's config, TLS and seal files as the restored state's server resource made them."""
        props = server_outputs(resources, node.data_dir, OPENBAO_SERVER_TYPE)
        node.configure(props["ca_pem"], props["cert_pem"], props["key_pem"], props["database_ca_pem"],
                       props.get("peers") or (), [props["seal_key"]] if props.get("seal_key") else [])


def backups(config: StackConfig) -> ServerBackups:
    """`make backup` and `make restore`: the servers' processes and data folders on this machine."""
    return LocalBackups(config)
