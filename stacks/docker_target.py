"""The docker target: OpenBao and PostgreSQL as containers of the stack's own Docker engine.

Its servers for the root program (`servers`, `exports`), and what a stack of it has on this machine,
found from its validated config: its own Docker engine, and the database's dynamic users (read as the
superuser inside the container). `make up` starts the engine, `make down` proves with these that
nothing is left; the tests do the same. The functions every target has are listed in stacks/targets.py.
"""

import contextlib
import json
import subprocess
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator

from components.docker.daemon import DockerEngine, DockerEngineError
from components.servers.postgres_image import RUN
from components.postgres_sql import DYNAMIC_USERS_QUERY, drop_dynamic_user_statements
from stacks.backups import BackupError, Restored, ServerBackups
from stacks.config import ConfigError, StackConfig, docker_dir
from stacks.servers import Servers, vault_provider_on

#: Where its database runs, as the database component names it (its `container`, output `db_container`).
DATABASE_LOCATION = "container"
#: What `make down` leaves of a stack of this target.
AFTER_DOWN = "no server left"
#: Whether its servers answer at the addresses its outputs give, nothing held open (`make up` starts
#: those that do not; `make drift` refuses to read a stack whose servers are down).
REACHED_AT_OUTPUTS = True


def engine(config: StackConfig) -> DockerEngine:
    return DockerEngine(docker_dir(config))


def check_machine(config: StackConfig) -> None:
    """The images' contexts are made, the OpenBao binary the stack names runs, and the stack's Docker
    engine answers (ConfigError naming the field)."""
    from components.docker.images import make_openbao_context, missing_contexts
    from components.servers.openbao import LocalOpenBaoError, binary_version

    missing = missing_contexts()
    if missing:
        raise ConfigError("target", f"the docker target's images are built from contexts not made yet: "
                                    f"{'; '.join(missing)}")
    if config.vault.binary:
        try:
            binary_version(Path(config.vault.binary))
        except LocalOpenBaoError as error:
            raise ConfigError("vault_binary", str(error)) from None
        # Its image's context is a copy of it, made here where the binary is (bootstrap made the wheel's).
        make_openbao_context(config.vault.binary)
    if not engine(config).answers():
        raise ConfigError("target", f"no Docker engine answers at {engine(config).host}: `make up` and `make "
                                    "preview` start the stack's own there")


@contextlib.contextmanager
def engine_running(config: StackConfig, keep: bool = False) -> Iterator[bool]:
    """A docker-target stack's own engine, started unless it answers (pulumi-docker's provider
    connects to it even for a preview); stopped afterwards if this started it, unless keep.
    Yields whether it started it. Any other target: nothing to do."""
    started = config.target.kind == "docker" and engine(config).ensure_running()
    try:
        yield started
    finally:
        if started and not keep:
            engine(config).stop()


def superuser_sql(config: StackConfig, container: str, script: str) -> str:
    """Runs SQL as the superuser (psql over the socket inside the container) on the application
    database; its output, one row per line. The script goes in on stdin, never on a command line."""
    result = subprocess.run(
        ["docker", "--host", engine(config).host, "exec", "--interactive", "--user", "postgres", container, "psql",
         "--host", RUN, "--port", str(config.target.db_port), "--dbname", config.database.name,
         "--no-psqlrc", "--quiet", "--tuples-only", "--no-align", "-v", "ON_ERROR_STOP=1", "--file", "-"],
        input=script, capture_output=True, text=True)
    if result.returncode != 0:
        raise DockerEngineError(f"psql in {container} failed: {result.stderr.strip()}")
    return result.stdout


def dynamic_users(config: StackConfig, container: str = "", query: str = DYNAMIC_USERS_QUERY) -> list[str]:
    """The database users Vault's dynamic roles made that still exist (or those a narrower query of
    them lists)."""
    return sorted(superuser_sql(config, container, query + ";").split())


def drop_dynamic_users(config: StackConfig, container: str, users: list[str]) -> None:
    """Drops dynamic users as the superuser (their sessions ended first), as Vault's revocation would."""
    superuser_sql(config, container, ";\n".join(drop_dynamic_user_statements(users)) + ";")


def container_pid(config: StackConfig, container: str) -> int:
    """The host's process id of the container's first process (OpenBao's server; PostgreSQL's postmaster)."""
    return int(engine(config).docker("inspect", "--format", "{{.State.Pid}}", container).stdout)


def ours_left(config: StackConfig) -> list[str]:
    """What the stack's engine still holds or runs, named (nothing, once `make down` removed it)."""
    left = []
    if engine(config).pid() is not None:
        left.append(f"dockerd ({engine(config).data_root})")
    if engine(config).data_root.exists():
        left.append(f"the engine's data root {engine(config).data_root} (images, containers, volumes)")
    return left


def left_after_destroy(config: StackConfig, say: Callable[[str], None]) -> list[str]:
    """Removes the stack's engine (it held only the stack's containers, volumes and images); what is left."""
    if engine(config).pid() is not None:
        say(f"removing the stack's Docker engine and its data root {engine(config).data_root}")
        engine(config).remove()
    return ours_left(config)


def reaching_vault(_config: StackConfig) -> ContextManager[Any]:
    """Vault answers at its published port: nothing to hold open."""
    return contextlib.nullcontext()


def servers(config: StackConfig) -> Servers:
    """OpenBao and PostgreSQL as containers of the stack's own Docker engine (started by `make up`
    under the data folder), from images built here, and the Vault provider."""
    import pulumi
    import pulumi_docker as docker

    from components.bootstrap_pki import BootstrapPki, BootstrapPkiArgs

    from components.docker.daemon import DockerEngine
    from components.docker.postgres import PostgresDocker, PostgresDockerArgs
    from components.docker.vault import VaultDocker, VaultDockerArgs

    pki = BootstrapPki("bootstrap", BootstrapPkiArgs(
        ca_common_name=config.pki.ca_common_name, ca_validity_hours=config.pki.ca_validity_hours,
        server_cert_validity_hours=config.pki.cert_validity_hours,
        server_cert_renewal_hours=config.pki.cert_renewal_hours,
    ))
    engine = DockerEngine(docker_dir(config))
    on_engine = pulumi.ResourceOptions(provider=docker.Provider("docker", host=engine.host))
    database = PostgresDocker("db", PostgresDockerArgs(
        port=config.target.db_port, ca_pem=pki.ca_cert_pem, cert_pem=pki.database_cert_pem,
        key_pem=pki.database_private_key_pem, database=config.database.name, admin=config.database.admin,
        grant_specs=config.database.roles, service_users=config.database.service_user_roles,
        engine_host=engine.host,
    ), opts=on_engine)
    vault_server = VaultDocker("vault", VaultDockerArgs(
        port=config.target.vault_port, cluster_port=config.target.vault_cluster_port, ca_pem=pki.ca_cert_pem,
        cert_pem=pki.vault_cert_pem, key_pem=pki.vault_private_key_pem, database_ca_pem=pki.ca_cert_pem,
        ca_file=f"{config.data_dir}/vault-ca.crt", engine_host=engine.host,
        key_shares=config.vault.key_shares, key_threshold=config.vault.key_threshold, binary=config.vault.binary,
    ), opts=on_engine)
    return Servers(vault_server, database, vault_provider_on(vault_server))


def exports(_config: StackConfig, servers: Servers) -> dict[str, Any]:
    """The outputs only this target has: the containers, by server, and the OpenBao release its container runs."""
    return {"db_container": servers.database.container, "vault_container": servers.vault.container,
            "vault_version": servers.vault.version}


def audit_folders(inspected: list[dict[str, Any]], in_container: str) -> dict[str, Path]:
    """The containers (`docker inspect`'s objects) that hold a volume at `in_container`, by name: that
    volume's folder on this host (its Mountpoint)."""
    return {container["Name"].lstrip("/"): Path(mount["Source"])
            for container in inspected for mount in container.get("Mounts") or ()
            if mount.get("Type") == "volume" and mount.get("Destination") == in_container}


def rotate_audit(config: StackConfig, keep: int) -> list[str]:
    """OpenBao's container writes its audit log on its `audit` volume; its image has no shell, so the log
    is moved aside on this host, in the volume's folder (`audit.log.<UTC time>`), and the container is
    sent SIGHUP, on which OpenBao reopens its file, losing no line; the `keep` newest moved logs are
    kept. The moved files, on this host."""
    from components.docker.vault import IN_CONTAINER
    from components.servers.openbao import AuditRotationError, rotate_audit_file

    docker_engine = engine(config)
    if not docker_engine.answers():
        raise AuditRotationError(f"no Docker engine answers at {docker_engine.host}: its audit log is rotated only "
                                 "while the stack runs (`make up` first)")
    names = docker_engine.docker("ps", "--all", "--quiet").stdout.split()
    inspected = json.loads(docker_engine.docker("inspect", *names).stdout) if names else []
    folders = audit_folders(inspected, str(IN_CONTAINER.audit_log.parent))
    if not folders:
        raise AuditRotationError(f"no OpenBao container with an audit volume in the engine at {docker_engine.host} "
                                 "(`make up` makes it)")
    running = {c["Name"].lstrip("/") for c in inspected if c["State"]["Running"]}
    moved = []
    for container, folder in folders.items():
        if container not in running:
            raise AuditRotationError(f"OpenBao's container {container} is not running: its audit log is rotated "
                                     "only while it runs (`make up` first)")
        path = rotate_audit_file(folder / IN_CONTAINER.audit_log.name,
                                 lambda: docker_engine.docker("kill", "--signal", "HUP", container),
                                 f"OpenBao's container {container}", keep)
        if path is not None:
            moved.append(str(path))
    return moved


#: pg_dumpall and psql: a dump or a load of the stack's database may take this long.
DATABASE_SECONDS = 1800
#: What psql says loading a `--clean` dump into the container's fresh cluster, and is no fault: the
#: dump drops and creates every role, the superuser it runs as among them.
EXPECTED_CLEAN_LOAD_ERRORS = ("current user cannot be dropped",)
#: The resources of the stack's engine a restore makes again: its servers' images, volumes and containers.
ENGINE_RESOURCES = ("docker:index/image:Image", "docker:index/volume:Volume", "docker:index/container:Container")
OPENBAO_INIT_TYPE = "pulumi-python:dynamic/dbcreds:OpenBaoInit"


def missing_images(config: StackConfig, state: list[dict]) -> list[str]:
    """The URNs of the state's images the engine does not hold (a machine's engine lost whole)."""
    return [r["urn"] for r in state if r["type"] == ENGINE_RESOURCES[0]
            and engine(config).docker("image", "inspect", (r.get("outputs") or {}).get("imageName", ""),
                                      check=False).returncode != 0]


class DockerBackups(ServerBackups):
    """The docker target's servers: containers of the stack's own engine, their data in its volumes. The
    database is dumped in its container (`pg_dumpall --clean`: it loads over the fresh cluster the
    container bootstraps). A restore makes the images, volumes and containers again from the restored
    state (`pulumi refresh` and `up` of those alone), loads the dump, forces the snapshot onto the fresh
    OpenBao and unseals it with the state's keys; the stack's `up` then proves it."""

    def __init__(self, config: StackConfig):
        self.config = config
        self.engine = engine(config)

    def dump_database(self, outputs: dict[str, Any], target: Path) -> None:
        container = outputs["db_container"]
        with open(target, "wb") as out:
            result = subprocess.run(
                ["docker", "--host", self.engine.host, "exec", "--user", "postgres", container, "pg_dumpall",
                 "--host", RUN, "--port", str(self.config.target.db_port), "--clean", "--if-exists"],
                stdout=out, stderr=subprocess.PIPE, text=True, timeout=DATABASE_SECONDS)
        if result.returncode != 0:
            raise BackupError(f"pg_dumpall in {container} failed: {result.stderr.strip()}")

    def _listed(self, *what: str) -> list[str]:
        if not self.engine.answers():
            return []
        return self.engine.docker(*what, "--format", "{{.Names}}" if what[0] == "ps" else "{{.Name}}").stdout.split()

    def running(self) -> list[str]:
        return [f"container {name}" for name in self._listed("ps")]

    def data(self) -> list[str]:
        return [f"volume {name}" for name in self._listed("volume", "ls")]

    def steps(self, stop_first: bool) -> list:
        from stacks.backups import RestoreStep

        steps = [RestoreStep("stop", "remove the stack's containers and volumes")] if stop_first else []
        return steps + [
            RestoreStep("state", "import the state's export"),
            RestoreStep("servers", "the engine started, the servers' images, volumes and containers made again "
                                   "from the state (a fresh PostgreSQL cluster, an uninitialised OpenBao)"),
            RestoreStep("postgres", "the dump loaded over the fresh cluster"),
            RestoreStep("openbao", "OpenBao initialised with keys of its own, its raft snapshot restored "
                                   "(snapshot-force)"),
            RestoreStep("unseal", "unsealed with the state's unseal keys"),
            RestoreStep("up", "the stack's up (refresh, then the post-deploy checks)"),
        ]

    def run(self, step: str, restored: Restored | None) -> None:
        from components.servers.process import pem_file
        from stacks.backups import force_snapshot, outputs_of_type, serve_restored
        from stacks.backups import DATABASE_DUMP, RAFT_SNAPSHOT

        if step == "stop":
            self._remove_servers()
        elif step == "servers":
            self._make_servers(restored)
        elif step == "postgres":
            self._load_dump(restored.outputs["db_container"], restored.parts / DATABASE_DUMP)
        elif step in ("openbao", "unseal"):
            import hvac

            with pem_file(restored.outputs["vault_ca_pem"]) as ca:
                def client(token: str = "", timeout: int = 5) -> hvac.Client:
                    return hvac.Client(url=restored.outputs["vault_addr"], token=token, verify=ca, timeout=timeout)

                if step == "openbao":
                    force_snapshot(client(timeout=120), restored.parts / RAFT_SNAPSHOT, "shamir")
                else:
                    keys = outputs_of_type(restored.resources, OPENBAO_INIT_TYPE)["unseal_keys"]
                    serve_restored(client, restored.outputs["vault_admin_token"], keys, "shamir",
                                   restored.outputs["vault_addr"])

    def _remove_servers(self) -> None:
        """The stack's containers and volumes removed (its images kept: they are made again alike)."""
        if not self.engine.answers():
            return
        containers = self._listed("ps", "--all")
        if containers:
            self.engine.docker("rm", "--force", *containers)
        volumes = self._listed("volume", "ls")
        if volumes:
            self.engine.docker("volume", "rm", "--force", *volumes)

    def _make_servers(self, restored: Restored) -> None:
        """The engine's resources of the restored state refreshed (what is gone leaves the state) and made
        again, those alone (`--refresh` refreshes the targets only): the rest of the stack waits for the
        servers' data. An image the engine lost is built again."""
        self.engine.ensure_running()
        urns = [r["urn"] for r in restored.resources if r["type"] in ENGINE_RESOURCES]
        targets = [arg for urn in urns for arg in ("--target", urn)]
        replace = [arg for urn in missing_images(self.config, restored.resources) for arg in ("--replace", urn)]
        restored.pulumi(["up", "--yes", "--skip-preview", "--refresh", *targets, *replace])

    def _load_dump(self, container: str, dump: Path) -> None:
        from stacks.backups import unexpected_load_errors

        with open(dump, "rb") as data:
            result = subprocess.run(
                ["docker", "--host", self.engine.host, "exec", "--interactive", "--user", "postgres", container,
                 "psql", "--host", RUN, "--port", str(self.config.target.db_port), "--dbname", "postgres",
                 "--no-psqlrc", "--quiet", "--file", "-"],
                stdin=data, capture_output=True, timeout=DATABASE_SECONDS)
        stderr = result.stderr.decode(errors="replace")
        errors = [e for e in unexpected_load_errors(stderr) if e not in EXPECTED_CLEAN_LOAD_ERRORS]
        if result.returncode != 0 or errors:
            raise BackupError(f"loading the dump into {container} failed: {'; '.join(errors[:5]) or stderr[-2000:]}")


def backups(config: StackConfig) -> DockerBackups:
    """`make backup` and `make restore`: the containers and volumes of the stack's engine."""
    return DockerBackups(config)
