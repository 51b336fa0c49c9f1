"""Throwaway certificates for servers the tests start themselves (a PostgreSQL for SQL tests, a
provider called directly), from Python's `cryptography`. The stacks' own certificates come from
pulumi-tls (components/certificates.py). Keys are ECDSA P-256."""

import datetime
import ipaddress
from typing import Sequence


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject, issuer, public_key, validity_hours: int, ended_hours_ago: int = 0):
    from cryptography import x509

    # ended_hours_ago: a certificate whose validity ended that long ago.
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(
        hours=(validity_hours + ended_hours_ago) if ended_hours_ago else 0)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        # A minute of slack for clocks that disagree a little.
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=validity_hours))
    )


def _sign(builder, key) -> str:
    from cryptography.hazmat.primitives import hashes, serialization

    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def make_ca(common_name: str, validity_hours: int) -> dict[str, str]:
    """A new CA: its certificate and private key, as PEM."""
    from cryptography import x509

    key = _new_key()
    subject = _name(common_name)
    builder = (
        _builder(subject, subject, key.public_key(), validity_hours)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return {"cert_pem": _sign(builder, key), "private_key_pem": _pem_key(key)}


def issue_certificate(
    ca_cert_pem: str, ca_key_pem: str, common_name: str, dns_names: Sequence[str],
    ip_addresses: Sequence[str], server: bool, client: bool, validity_hours: int, ended_hours_ago: int = 0,
) -> dict[str, str]:
    """A new key and a certificate for it signed by the CA, as PEM (expired ended_hours_ago, if given)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode(), password=None)
    key = _new_key()
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    )
    builder = (
        _builder(_name(common_name), ca_cert.subject, key.public_key(), validity_hours, ended_hours_ago)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    sans = [x509.DNSName(d) for d in dns_names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return {"cert_pem": _sign(builder, ca_key), "private_key_pem": _pem_key(key)}
