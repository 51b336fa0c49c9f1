"""What a stack on the docker target has on this machine, found from its validated config: its own
Docker engine, and the database's dynamic users (read as the superuser inside the container).

`make up` starts the engine, `make down` proves with these that nothing is left; the tests do the same.
"""

import contextlib
import subprocess
from typing import Iterator

from components.docker.daemon import DockerEngine, DockerEngineError
from components.servers.postgres_image import RUN
from components.postgres_sql import DYNAMIC_USERS_QUERY, drop_dynamic_user_statements
from stacks.config import StackConfig, docker_dir


def engine(config: StackConfig) -> DockerEngine:
    return DockerEngine(docker_dir(config))


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


def dynamic_users(config: StackConfig, container: str, query: str = DYNAMIC_USERS_QUERY) -> list[str]:
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
