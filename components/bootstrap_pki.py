"""The stack's bootstrap PKI: its CA and the server certificates of Vault and the database, from
pulumi-tls (`components.certificates`).

    pki = BootstrapPki("bootstrap", BootstrapPkiArgs(ca_common_name="dbcreds CA"))
    pki.ca_cert_pem, pki.vault_cert_pem, pki.vault_private_key_pem (secret), pki.database_cert_pem
    pki.vault_node_certs[i]: node i's certificate and key (a cluster of OpenBao nodes, each its own)

Vault cannot issue its own listener certificate before it exists, so that one
comes from the stack itself. The same CA signs the database's, or Vault's PKI
engine issues it from an intermediate this CA signs (`components.vault.database_pki`).
Each certificate is renewed by the first `up` in the last tenth of its lifetime
(the servers': `server_cert_renewal_hours` before their end, when given).
"""

from dataclasses import dataclass
from typing import Optional

import pulumi

from components.defaults import CA_VALIDITY_HOURS, CERT_VALIDITY_HOURS
from components.certificates import KeyPair, self_signed_ca, signed_certificate


@dataclass(frozen=True)
class BootstrapPkiArgs:
    """What the bootstrap PKI is made of."""

    ca_common_name: str
    #: Names Vault's listener is reached at; 127.0.0.1 and localhost for the local target.
    vault_dns_names: tuple[str, ...] = ("localhost",)
    vault_ip_addresses: tuple[str, ...] = ("127.0.0.1",)
    #: One entry per OpenBao node: the names that node alone is reached at, beside the ones above.
    vault_node_names: tuple[tuple[str, ...], ...] = ((),)
    #: Names the database is reached at (verify-full checks them).
    database_dns_names: tuple[str, ...] = ("localhost",)
    database_ip_addresses: tuple[str, ...] = ("127.0.0.1",)
    ca_validity_hours: int = CA_VALIDITY_HOURS
    server_cert_validity_hours: int = CERT_VALIDITY_HOURS
    #: How long before their end the first `up` replaces the servers' certificates (None: a tenth of
    #: their lifetime).
    server_cert_renewal_hours: Optional[int] = None
    #: Sign the database's certificate too (off when Vault's PKI issues it).
    database_certificate: bool = True


class BootstrapPki(pulumi.ComponentResource):
    """A CA, and server certificates signed by it for Vault's listener and the database."""

    ca_cert_pem: pulumi.Output[str]
    #: Secret: it signs Vault's PKI intermediate.
    ca_private_key_pem: pulumi.Output[str]
    #: The first node's (the only one's, in a single server).
    vault_cert_pem: pulumi.Output[str]
    vault_private_key_pem: pulumi.Output[str]
    vault_node_certs: list[KeyPair]
    database_cert_pem: pulumi.Output[str]
    database_private_key_pem: pulumi.Output[str]

    def __init__(self, name: str, args: BootstrapPkiArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:pki:BootstrapPki", name, None, opts)
        ca = self_signed_ca(f"{name}-ca", self, args.ca_common_name, args.ca_validity_hours)
        # The first node's keeps the single server's name: a stack that grows keeps its certificate.
        self.vault_node_certs = [
            self._server_cert(f"{name}-vault-listener" + (f"-{i}" if i else ""), ca,
                              (*node_names, *args.vault_dns_names), args.vault_ip_addresses,
                              args)
            for i, node_names in enumerate(args.vault_node_names)]
        self.ca_cert_pem = ca.cert_pem
        self.ca_private_key_pem = ca.private_key_pem
        self.vault_cert_pem = self.vault_node_certs[0].cert_pem
        self.vault_private_key_pem = self.vault_node_certs[0].private_key_pem
        self.database_cert_pem = self.database_private_key_pem = pulumi.Output.from_input("")
        if args.database_certificate:
            database_cert = self._server_cert(f"{name}-database", ca, args.database_dns_names,
                                              args.database_ip_addresses, args)
            self.database_cert_pem = database_cert.cert_pem
            self.database_private_key_pem = database_cert.private_key_pem
        self.register_outputs({
            "ca_cert_pem": self.ca_cert_pem, "ca_private_key_pem": self.ca_private_key_pem,
            "vault_cert_pem": self.vault_cert_pem,
            "vault_private_key_pem": self.vault_private_key_pem,
            "database_cert_pem": self.database_cert_pem,
            "database_private_key_pem": self.database_private_key_pem,
        })

    def _server_cert(self, name: str, ca: KeyPair, dns_names, ip_addresses, args: BootstrapPkiArgs) -> KeyPair:
        return signed_certificate(
            name, self, ca, common_name=dns_names[0] if dns_names else ip_addresses[0],
            dns_names=dns_names, ip_addresses=ip_addresses, server=True,
            validity_hours=args.server_cert_validity_hours, renewal_hours=args.server_cert_renewal_hours,
        )
