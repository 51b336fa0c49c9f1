"""Keys and certificates from pulumi-tls: a self-signed CA, and certificates it signs.

    ca = self_signed_ca("boot-ca", parent, common_name="dbcreds CA", validity_hours=8760)
    server = signed_certificate("boot-db", parent, ca, common_name="localhost", dns_names=["localhost"],
                                ip_addresses=["127.0.0.1"], server=True, client=False, validity_hours=2160)
    server.cert_pem, server.private_key_pem (secret)

Keys are ECDSA P-256, in PKCS#8. A certificate is renewed (replaced) by the
first `up` within `early_renewal_hours` of its end: renewal_hours, or a tenth of
its lifetime (rounded down: under 10 hours, only once it has expired).
"""

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_tls as tls

from components.defaults import CERT_VALIDITY_HOURS


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key (secret)."""

    cert_pem: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]


def _key(name: str, opts: pulumi.ResourceOptions) -> tls.PrivateKey:
    return tls.PrivateKey(name, algorithm="ECDSA", ecdsa_curve="P256", opts=opts)


def _secret_key(key: tls.PrivateKey) -> pulumi.Output[str]:
    return pulumi.Output.secret(key.private_key_pem_pkcs8)


def tenth_unless_given(validity_hours: int, renewal_hours: Optional[int]) -> int:
    """early_renewal_hours: the given window, or a tenth of the lifetime."""
    return validity_hours // 10 if renewal_hours is None else renewal_hours


def self_signed_ca(name: str, parent: Optional[pulumi.Resource], common_name: str, validity_hours: int) -> KeyPair:
    """A CA: a new key and its self-signed certificate, children of parent."""
    opts = pulumi.ResourceOptions(parent=parent)
    key = _key(f"{name}-key", opts)
    cert = tls.SelfSignedCert(
        name, private_key_pem=key.private_key_pem, is_ca_certificate=True, set_subject_key_id=True,
        subject=tls.SelfSignedCertSubjectArgs(common_name=common_name),
        validity_period_hours=validity_hours, early_renewal_hours=validity_hours // 10,
        allowed_uses=["cert_signing", "crl_signing", "digital_signature"], opts=opts,
    )
    return KeyPair(cert.cert_pem, _secret_key(key))


def signed_certificate(
    name: str, parent: pulumi.Resource, ca: KeyPair, common_name: str, dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (), server: bool = True, client: bool = False,
    validity_hours: int = CERT_VALIDITY_HOURS, renewal_hours: Optional[int] = None,
) -> KeyPair:
    """A new key and a certificate for it signed by ca: server and/or client auth, with these SANs."""
    opts = pulumi.ResourceOptions(parent=parent)
    key = _key(f"{name}-key", opts)
    request = tls.CertRequest(
        f"{name}-request", private_key_pem=key.private_key_pem,
        subject=tls.CertRequestSubjectArgs(common_name=common_name),
        dns_names=list(dns_names), ip_addresses=list(ip_addresses), opts=opts,
    )
    uses = ["digital_signature", "key_encipherment"]
    uses += ["server_auth"] if server else []
    uses += ["client_auth"] if client else []
    cert = tls.LocallySignedCert(
        name, cert_request_pem=request.cert_request_pem, ca_cert_pem=ca.cert_pem,
        ca_private_key_pem=ca.private_key_pem, validity_period_hours=validity_hours,
        early_renewal_hours=tenth_unless_given(validity_hours, renewal_hours), allowed_uses=uses,
        set_subject_key_id=True, opts=opts,
    )
    return KeyPair(cert.cert_pem, _secret_key(key))
