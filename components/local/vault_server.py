"""The Vault server of the stack: OpenBao as a local process (the `local` target).

    vault = VaultServer("vault", VaultServerArgs(
        data_dir="/srv/openbao", port=8200, cluster_port=8201, ca_pem=ca, cert_pem=cert, key_pem=key,
        database_ca_pem=database_ca))
    vault.address, vault.admin_token (secret), vault.ca_file (for pulumi-vault's provider)
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pulumi

from components.local.providers.openbao_server import OpenBaoServer
from components.servers.openbao import LocalOpenBao
from components.vault_component import VaultComponent
from components.servers.server_running import ServerRunning, keeper_name


@dataclass(frozen=True)
class VaultServerArgs:
    """Where the server keeps its data, where it listens, and its TLS material."""

    data_dir: str
    port: int
    cluster_port: int
    ca_pem: pulumi.Input[str]
    cert_pem: pulumi.Input[str]
    key_pem: pulumi.Input[str]
    #: The CA of the database Vault connects to (verify-full), written beside Vault's own TLS files.
    database_ca_pem: pulumi.Input[str]
    #: Shamir unseal keys: how many, and how many unseal it.
    key_shares: int = 1
    key_threshold: int = 1


class VaultServer(VaultComponent):
    """An initialised, unsealed OpenBao with a TLS listener and a file audit device (outputs: see
    `VaultComponent`; the files are on this host)."""

    def __init__(self, name: str, args: VaultServerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:vault:VaultServer", name, None, opts)
        server = OpenBaoServer(
            f"{name}-openbao", data_dir=args.data_dir, port=args.port, cluster_port=args.cluster_port,
            ca_pem=args.ca_pem, cert_pem=args.cert_pem, key_pem=args.key_pem,
            database_ca_pem=args.database_ca_pem, key_shares=args.key_shares, key_threshold=args.key_threshold,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Started and unsealed again when a restart or an operator stopped or sealed it.
        ServerRunning(keeper_name(name), "openbao", data_dir=args.data_dir, port=args.port,
                      second_port=args.cluster_port, unseal_keys=server.unseal_keys,
                      opts=pulumi.ResourceOptions(parent=self, depends_on=[server]))
        # Where it listens and keeps its files, from the args: known at a first preview (the Vault
        # provider and the policy gate use them then); what uses them waits for this component.
        local = LocalOpenBao(Path(args.data_dir), args.port, args.cluster_port)
        self._register_vault(
            address=local.address, ca_pem=args.ca_pem, ca_file=str(local.ca_file),
            database_ca_file=str(local.database_ca_file), admin_token=server.root_token, audit_log=server.audit_log,
        )
