"""The root program's preflight: what a stack's validated config needs of this machine (a binary, files,
a cluster, a Docker engine), checked before the program makes anything. stacks/config.py only reads and
validates; this looks at the machine. Its errors are ConfigErrors all the same, naming the field to fix."""

from pathlib import Path

from stacks.config import ConfigError, StackConfig, docker_dir


def check_machine(config: StackConfig) -> None:
    """What the config needs of this machine, checked before the program makes anything.

    The servers' own checks find these too, but only when their resource comes
    up, after `pulumi up` may have made the resources before it.
    """
    from components.servers.cockroach import LocalCockroachError, cockroach_binary

    if config.database.engine == "cockroachdb" and config.target.kind == "local":
        try:
            cockroach_binary()
        except LocalCockroachError as error:
            raise ConfigError("db_engine", f"cockroachdb runs here as a local process: {error}") from None
    if config.target.kind == "kubernetes" and config.configures_vault:
        import pulumi

        # A preview runs without a cluster (pulumi-kubernetes plans every object to create); an up cannot.
        if not pulumi.runtime.is_dry_run():
            from stacks.kubernetes_target import cluster_problem

            problem = cluster_problem(config)
            if problem:
                raise ConfigError("k8s_kubeconfig", problem)
    if config.target.kind == "local" and config.vault.highly_available:
        from stacks.local_target import vault_quorum_problem

        problem = vault_quorum_problem(config)
        if problem:
            raise ConfigError("vault_nodes", problem)
    if config.vault.binary:
        from components.servers.openbao import LocalOpenBaoError, binary_version

        try:
            binary_version(Path(config.vault.binary))
        except LocalOpenBaoError as error:
            raise ConfigError("vault_binary", str(error)) from None
    if config.target.kind == "external":
        for field in ("vault_ca_file", "db_ca_file"):
            if not Path(getattr(config.target, field)).is_file():
                raise ConfigError(field, f"no file at {getattr(config.target, field)}")
    if config.target.kind == "docker":
        from components.docker.daemon import DockerEngine
        from components.docker.images import missing_contexts

        missing = missing_contexts()
        if missing:
            raise ConfigError("target", f"the docker target's images are built from contexts not made yet: "
                                        f"{'; '.join(missing)}")
        engine = DockerEngine(docker_dir(config))
        if not engine.answers():
            raise ConfigError("target", f"no Docker engine answers at {engine.host}: `make up` and `make "
                                        "preview` start the stack's own there")
