"""The stack's bootstrap PKI: its CA and the certificate of Vault's own listener.

Vault cannot issue its own listener certificate before it exists, so these come
from the stack itself (`components.dynamic.tls`, standing in for pulumi-tls,
which cannot be built here).
"""

from dataclasses import dataclass
from typing import Optional

import pulumi

from components.dynamic.tls import IssuedCertificate, SelfSignedCa


@dataclass(frozen=True)
class BootstrapPkiArgs:
    """What the bootstrap PKI is made of."""

    ca_common_name: str
    #: Names Vault's listener is reached at; 127.0.0.1 and localhost for the local target.
    vault_dns_names: tuple[str, ...] = ("localhost",)
    vault_ip_addresses: tuple[str, ...] = ("127.0.0.1",)
    ca_validity_hours: int = 24 * 365
    vault_cert_validity_hours: int = 24 * 90


class BootstrapPki(pulumi.ComponentResource):
    """A CA and Vault's listener certificate signed by it."""

    ca_cert_pem: pulumi.Output[str]
    vault_cert_pem: pulumi.Output[str]
    vault_private_key_pem: pulumi.Output[str]

    def __init__(self, name: str, args: BootstrapPkiArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:pki:BootstrapPki", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ca = SelfSignedCa(f"{name}-ca", common_name=args.ca_common_name,
                          validity_hours=args.ca_validity_hours, opts=child)
        vault_cert = IssuedCertificate(
            f"{name}-vault-listener", ca_cert_pem=ca.cert_pem, ca_private_key_pem=ca.private_key_pem,
            common_name=args.vault_dns_names[0] if args.vault_dns_names else args.vault_ip_addresses[0],
            dns_names=args.vault_dns_names, ip_addresses=args.vault_ip_addresses,
            server=True, validity_hours=args.vault_cert_validity_hours, opts=child,
        )
        self.ca_cert_pem = ca.cert_pem
        self.vault_cert_pem = vault_cert.cert_pem
        self.vault_private_key_pem = pulumi.Output.secret(vault_cert.private_key_pem)
        self.register_outputs({
            "ca_cert_pem": self.ca_cert_pem,
            "vault_cert_pem": self.vault_cert_pem,
            "vault_private_key_pem": self.vault_private_key_pem,
        })
