"""PostgreSQL 15 as a container of the stack's Docker engine (the `docker` target).

    db = PostgresDocker("db", PostgresDockerArgs(port=5432, ca_pem=ca, cert_pem=cert, key_pem=key,
                        grant_specs=specs), opts=pulumi.ResourceOptions(provider=docker_provider))

The image is built from `docker/postgres.Dockerfile` (Debian's postgresql-15 on
a debootstrap root filesystem). As on the Kubernetes target, the TLS material,
the config and the bootstrap SQL (admin, database, demo schema, group roles,
service users) are handed to the container as files, and the bootstrap SQL runs
once, when the data volume is new. The container's start script runs as root
only long enough to hand the TLS files to the postgres user (CHOWN, SETUID and
SETGID, and FOWNER to set their modes, are its only capabilities), then runs PostgreSQL as that user. The
server listens on 127.0.0.1 (the host's network), TLS and SCRAM only; the
superuser has no password and is reached only over the socket inside the
container (`docker exec`), as on the local target.
"""

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_docker as docker

from components.database_component import DatabaseComponent, new_password
from components.defaults import DATABASE, DB_ADMIN, GROUP_PREFIX
from components.docker import images
from components.docker.containers import ContainerRunning, hardened, resource_name
from components.servers.server_running import keeper_name
from components.grant_specs import GrantSpec
from components.servers.postgres import render_pg_hba, render_pg_ident, render_postgresql_conf
from components.servers.process import LOOPBACK
from components.servers.postgres_image import BOOTSTRAP, DATA, POSTGRES_SCRIPT, RUN
from components.postgres_sql import bootstrap_sql, group_role_name

START_SCRIPT = f"""#!/bin/sh
# As root: the volume and the TLS files to the postgres user, then PostgreSQL as that user.
set -eu
if [ "$(stat -c %u {DATA})" = 0 ]; then
  chmod 0700 {DATA} && chown postgres:postgres {DATA}
fi
install -o postgres -g postgres -m 0644 {BOOTSTRAP}/tls/server.crt {RUN}/server.crt
install -o postgres -g postgres -m 0600 {BOOTSTRAP}/tls/server.key {RUN}/server.key
# The admin's first password, uploaded with the container, is handed over in memory at its first start
# (postgres.sh needs it for a new volume only; this root has no right to look into the cluster) and leaves
# the container's disk.
if [ -f {BOOTSTRAP}/admin-password ]; then
  install -o postgres -g postgres -m 0400 {BOOTSTRAP}/admin-password {RUN}/admin-password
  rm -f {BOOTSTRAP}/admin-password
fi
chmod 0700 {RUN} && chown postgres:postgres {RUN}
exec setpriv --reuid=postgres --regid=postgres --init-groups /bin/sh {BOOTSTRAP}/postgres.sh
"""

@dataclass(frozen=True)
class PostgresDockerArgs:
    port: int
    ca_pem: pulumi.Input[str]
    cert_pem: pulumi.Input[str]
    key_pem: pulumi.Input[str]
    #: The engine pulumi-docker's provider uses (its keeper starts the container there when it stopped).
    engine_host: str
    database: str = DATABASE
    admin: str = DB_ADMIN
    grant_specs: tuple[GrantSpec, ...] = ()
    group_prefix: str = GROUP_PREFIX
    #: Pre-existing service users for Vault static roles: user name -> the grant spec whose group it joins.
    service_users: tuple[tuple[str, str], ...] = ()
    memory_mb: int = 512


class PostgresDocker(DatabaseComponent):
    """PostgreSQL 15 in a container on 127.0.0.1: TLS and SCRAM only, an admin with a random bootstrap
    password. `container` is the container's name (for `docker exec` as the superuser)."""

    container: pulumi.Output[str]

    def __init__(self, name: str, args: PostgresDockerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:database:PostgresDocker", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        specs = {spec.name for spec in args.grant_specs}
        for user, spec_name in args.service_users:
            if spec_name not in specs:
                raise ValueError(f"service user {user!r}: no grant spec named {spec_name!r}")
        password = new_password(f"{name}-admin-bootstrap", self)
        image = docker.Image(
            f"{name}-image", image_name=images.image_names()["postgres"],
            build=docker.DockerBuildArgs(context=str(images.postgres_context()),
                                         dockerfile=str(images.DOCKERFILES / "postgres.Dockerfile")),
            skip_push=True, build_on_preview=False, opts=child)
        volume = docker.Volume(f"{name}-data", name=resource_name(name, "data"), opts=child)
        files = {
            "start.sh": START_SCRIPT, "postgres.sh": POSTGRES_SCRIPT,
            "postgresql.conf": render_postgresql_conf(args.port, LOOPBACK, RUN),
            "pg_hba.conf": render_pg_hba(), "pg_ident.conf": render_pg_ident("postgres"),
            "bootstrap.sql": bootstrap_sql(args.admin, args.database, args.grant_specs,
                                                     args.group_prefix, args.service_users),
            "tls/server.crt": args.cert_pem,
        }
        uploads = [docker.ContainerUploadArgs(file=f"{BOOTSTRAP}/{path}", content=content)
                   for path, content in files.items()]
        uploads += [docker.ContainerUploadArgs(file=f"{BOOTSTRAP}/{path}", content=pulumi.Output.secret(content),
                                               permissions="0400")
                    for path, content in (("tls/server.key", args.key_pem), ("admin-password", password))]
        settings = hardened(args.memory_mb, add_capabilities=("CHOWN", "FOWNER", "SETUID", "SETGID"))
        settings["tmpfs"] = {**settings["tmpfs"], RUN: "rw,nosuid,nodev,noexec,size=8m,mode=0755"}
        container = docker.Container(
            f"{name}-container", name=resource_name(name, "postgres"), image=image.repo_digest,
            entrypoints=["/bin/sh", f"{BOOTSTRAP}/start.sh"],
            volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path=DATA)],
            uploads=uploads,
            # Ready once the server itself (not the one the bootstrap runs on the socket) answers.
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "pg_isready", "--quiet", "--host", LOOPBACK, "--port", str(args.port)],
                interval="1s", timeout="5s", retries=120),
            # A fast shutdown: the default (smart) one waits for Vault's pooled connections to close.
            stop_signal="SIGINT",
            wait=True, wait_timeout=180, **settings, opts=child)
        # Started again when it stopped; what works in the database waits for it.
        keeper = ContainerRunning(keeper_name(name), host=args.engine_host, container=container.name,
                                  opts=pulumi.ResourceOptions(parent=self, depends_on=[container]))
        self._register_database(
            host=LOOPBACK, port=args.port, database=args.database, admin=args.admin,
            admin_bootstrap_password=password, ca_pem=args.ca_pem,
            group_roles=pulumi.Output.all(container.id, keeper.id).apply(
                lambda _: {s.name: group_role_name(args.group_prefix, s) for s in args.grant_specs}),
            container=container.name,
        )
