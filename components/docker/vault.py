"""OpenBao as a container of the stack's Docker engine (the `docker` target).

    vault = VaultDocker("vault", VaultDockerArgs(port=8200, cluster_port=8201, ca_pem=ca, cert_pem=cert,
                        key_pem=key, database_ca_pem=db_ca, ca_file="/srv/stack/vault-ca.crt"),
                        opts=pulumi.ResourceOptions(provider=docker_provider))

The image is built from `docker/openbao.Dockerfile` (the static `bao` binary,
FROM scratch). The container runs on the host's network, listening on
127.0.0.1 only, with no capability and no privilege gain; raft data and the
audit log live in volumes. The config is the local target's
(`components.local.openbao.render_config`) with the container's paths. The
stack initialises and unseals it through the API, as on the local target, and
unseals it again whenever a restart left it sealed.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import hvac
import pulumi
import pulumi_docker as docker
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.docker import images
from components.docker.containers import hardened, resource_name, running, start_container
from components.dynamic.server_running import keeper_name
from components.local.openbao import INIT_TIMEOUT_SECONDS, LocalOpenBao, initialize, is_active, render_config, unseal
from components.local.process import write_file, wait_ready
from components.vault_component import VaultComponent

#: The server's folder inside the container: the local target's layout under it.
IN_CONTAINER = LocalOpenBao(Path("/openbao"), 0, 0)


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


def _client(address: str, ca_pem: str, timeout: int = 10) -> tuple[hvac.Client, Any]:
    ca = tempfile.NamedTemporaryFile("w", suffix=".pem")
    ca.write(ca_pem)
    ca.flush()
    return hvac.Client(url=address, verify=ca.name, timeout=timeout), ca


def _wait_answering(client: hvac.Client, address: str) -> None:
    def ready() -> None:
        client.sys.read_health_status(method="GET")

    wait_ready(ready, None, Path("/dev/null"), f"OpenBao at {address}", RuntimeError)


class _OpenBaoInitProvider(ResourceProvider):
    """Initialises the server in a new raft volume, and unseals it; a new container on the same
    volume (the image or the config changed) is unsealed with the keys from state."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        write_file(Path(props["ca_file"]), props["ca_pem"], 0o644)
        client, ca = _client(props["address"], props["ca_pem"], INIT_TIMEOUT_SECONDS)
        with ca:
            _wait_answering(client, props["address"])
            if client.sys.is_initialized():
                raise RuntimeError(f"OpenBao at {props['address']} is initialised already: its raft volume "
                                   f"{props['raft_volume']} holds a server whose keys are not in this stack's "
                                   "state (another stack's, or an initialisation interrupted before the state "
                                   "recorded it); start over with a new volume: pulumi up --replace on the "
                                   "vault-raft Volume")
            root_token, keys = initialize(client, int(props["key_shares"]), int(props["key_threshold"]))
            unseal(client, keys)
        return CreateResult(id_=props["raft_volume"], outs={**props, "root_token": root_token, "unseal_keys": keys})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in ("raft_volume", "key_shares", "key_threshold") if olds.get(k) != news.get(k)]
        changed = [k for k in ("container_id", "ca_pem", "ca_file", "address") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(replaces or changed), replaces=replaces, delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        write_file(Path(news["ca_file"]), news["ca_pem"], 0o644)
        client, ca = _client(news["address"], news["ca_pem"])
        with ca:
            _wait_answering(client, news["address"])
            unseal(client, olds["unseal_keys"])
        return UpdateResult(outs={**news, "root_token": olds["root_token"], "unseal_keys": olds["unseal_keys"]})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        Path(props["ca_file"]).unlink(missing_ok=True)


class OpenBaoInit(Resource, module="dbcreds", name="OpenBaoInit"):
    """The initialisation of an OpenBao reached at `address`: its root token and unseal keys (secret)."""

    root_token: pulumi.Output[str]
    unseal_keys: pulumi.Output[list]

    def __init__(self, name: str, address: pulumi.Input[str], ca_pem: pulumi.Input[str], ca_file: str,
                 raft_volume: pulumi.Input[str], container_id: pulumi.Input[str], key_shares: int,
                 key_threshold: int, opts: Optional[pulumi.ResourceOptions] = None):
        props = {"address": address, "ca_pem": ca_pem, "ca_file": ca_file, "raft_volume": raft_volume,
                 "container_id": container_id, "key_shares": key_shares, "key_threshold": key_threshold,
                 "root_token": None, "unseal_keys": None}
        super().__init__(_OpenBaoInitProvider(), name, props, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=["root_token", "unseal_keys"])))


class _UnsealedProvider(ResourceProvider):
    @staticmethod
    def _ensure(props: dict[str, Any]) -> None:
        start_container(props["host"], props["container"])
        client, ca = _client(props["address"], props["ca_pem"])
        with ca:
            _wait_answering(client, props["address"])
            unseal(client, props["unseal_keys"])

    def create(self, props: dict[str, Any]) -> CreateResult:
        self._ensure(props)
        return CreateResult(id_=props["address"], outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        if olds != news or not running(news["host"], news["container"]):
            return DiffResult(changes=True, replaces=[])
        client, ca = _client(news["address"], news["ca_pem"], timeout=5)
        with ca:
            return DiffResult(changes=not is_active(client), replaces=[])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._ensure(news)
        return UpdateResult(outs=news)


class VaultUnsealed(Resource, module="dbcreds", name="VaultUnsealed"):
    """OpenBao's container runs and the server at `address` is unsealed: checked at every preview;
    the container started and the server unsealed with the keys when not."""

    def __init__(self, name: str, host: pulumi.Input[str], container: pulumi.Input[str],
                 address: pulumi.Input[str], ca_pem: pulumi.Input[str], unseal_keys: pulumi.Input[list],
                 opts: Optional[pulumi.ResourceOptions] = None):
        props = {"host": host, "container": container, "address": address, "ca_pem": ca_pem,
                 "unseal_keys": pulumi.Output.secret(unseal_keys)}
        super().__init__(_UnsealedProvider(), name, props, opts)


class VaultDocker(VaultComponent):
    """An initialised, unsealed OpenBao container with a TLS listener on 127.0.0.1 and a file audit
    device (outputs: see `VaultComponent`; `database_ca_file` and `audit_log` are paths in the
    container). `container` is the container's name in the engine."""

    container: pulumi.Output[str]

    def __init__(self, name: str, args: VaultDockerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:vault:VaultDocker", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        image = docker.Image(
            f"{name}-image", image_name=f"dbcreds-openbao:{images.openbao_context().name.split('-', 1)[1]}",
            build=docker.DockerBuildArgs(context=str(images.openbao_context()),
                                         dockerfile=str(images.DOCKERFILES / "openbao.Dockerfile")),
            skip_push=True, build_on_preview=False, opts=child)
        volumes = {part: docker.Volume(f"{name}-{part}", name=resource_name(name, part), opts=child)
                   for part in ("raft", "audit")}
        server = LocalOpenBao(IN_CONTAINER.data_dir, args.port, args.cluster_port)
        tls = IN_CONTAINER.data_dir / "tls"
        uploads = [
            docker.ContainerUploadArgs(file=str(IN_CONTAINER.data_dir / "config.hcl"), content=render_config(
                IN_CONTAINER.data_dir, args.port, args.cluster_port)),
            docker.ContainerUploadArgs(file=str(tls / "ca.crt"), content=args.ca_pem),
            docker.ContainerUploadArgs(file=str(tls / "server.crt"), content=args.cert_pem),
            docker.ContainerUploadArgs(file=str(tls / "server.key"), content=pulumi.Output.secret(args.key_pem),
                                       permissions="0400"),
            docker.ContainerUploadArgs(file=str(IN_CONTAINER.database_ca_file), content=args.database_ca_pem),
        ]
        container = docker.Container(
            f"{name}-container", name=resource_name(name, "openbao"), image=image.repo_digest,
            command=["server", f"-config={IN_CONTAINER.data_dir / 'config.hcl'}"],
            volumes=[docker.ContainerVolumeArgs(volume_name=volumes[part].name,
                                                container_path=str(IN_CONTAINER.data_dir / part))
                     for part in volumes],
            uploads=uploads, **hardened(args.memory_mb), opts=child)
        init = OpenBaoInit(f"{name}-init", address=server.address, ca_pem=args.ca_pem, ca_file=args.ca_file,
                           raft_volume=volumes["raft"].name, container_id=container.id,
                           key_shares=args.key_shares, key_threshold=args.key_threshold, opts=child)
        # Unsealed again when a restart of the container or the engine left it sealed.
        VaultUnsealed(keeper_name(name), host=args.engine_host, container=container.name, address=server.address,
                      ca_pem=args.ca_pem, unseal_keys=init.unseal_keys,
                      opts=pulumi.ResourceOptions(parent=self, depends_on=[init]))
        self._register_vault(
            address=server.address, ca_pem=args.ca_pem, ca_file=args.ca_file,
            database_ca_file=str(IN_CONTAINER.database_ca_file), admin_token=init.root_token,
            audit_log=str(IN_CONTAINER.audit_log), container=container.name,
        )
