"""What a stack on the docker target has on this machine, found from its validated config: its own
Docker engine, and the database's dynamic users (read as the superuser inside the container).

`make up` starts the engine, `make down` proves with these that nothing is left; the tests do the same.
"""

import contextlib
from typing import Iterator

from components.docker.daemon import DockerEngine
from components.docker.postgres import RUN
from components.postgres_sql import DYNAMIC_USERS_QUERY
from stacks.config import StackConfig, docker_dir


def engine(config: StackConfig) -> DockerEngine:
    return DockerEngine(docker_dir(config))


@contextlib.contextmanager
def engine_running(config: StackConfig, keep: bool = False) -> Iterator[bool]:
    """A docker-target stack's own engine, started unless it answers (pulumi-docker's provider
    connects to it even for a preview); stopped afterwards if this started it, unless keep.
    Yields whether it started it. Any other target: nothing to do."""
    started = config.target == "docker" and engine(config).ensure_running()
    try:
        yield started
    finally:
        if started and not keep:
            engine(config).stop()


def dynamic_users(config: StackConfig, container: str) -> list[str]:
    """The database users Vault's dynamic roles made that still exist (psql as the superuser, over the
    socket inside the container)."""
    result = engine(config).docker(
        "exec", "--user", "postgres", container, "psql", "--host", RUN, "--port", str(config.db_port),
        "--dbname", config.db_name, "--no-psqlrc", "--tuples-only", "--no-align", "--command", DYNAMIC_USERS_QUERY)
    return sorted(result.stdout.split())


def ours_left(config: StackConfig) -> list[str]:
    """What the stack's engine still holds or runs, named (nothing, once `make down` removed it)."""
    left = []
    if engine(config).pid() is not None:
        left.append(f"dockerd ({engine(config).data_root})")
    if engine(config).data_root.exists():
        left.append(f"the engine's data root {engine(config).data_root} (images, containers, volumes)")
    return left
