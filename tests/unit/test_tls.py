"""The certificate functions behind the `cryptography` dynamic providers."""

import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from components.dynamic.tls import issue_certificate, make_ca


@pytest.fixture(scope="module")
def ca():
    return make_ca("test CA", validity_hours=2)


def load(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def test_ca_is_a_self_signed_ca_with_its_key(ca):
    cert = load(ca["cert_pem"])
    assert cert.subject == cert.issuer
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    cert.verify_directly_issued_by(cert)
    key = serialization.load_pem_private_key(ca["private_key_pem"].encode(), password=None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert 2 * 3600 <= lifetime.total_seconds() <= 2 * 3600 + 120


def test_server_certificate_is_signed_by_the_ca_with_sans(ca):
    issued = issue_certificate(
        ca["cert_pem"], ca["private_key_pem"], "localhost", ["localhost"], ["127.0.0.1", "::1"],
        server=True, client=False, validity_hours=1,
    )
    cert = load(issued["cert_pem"])
    cert.verify_directly_issued_by(load(ca["cert_pem"]))
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    usages = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert usages == [ExtendedKeyUsageOID.SERVER_AUTH]
    key = serialization.load_pem_private_key(issued["private_key_pem"].encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()


def test_client_certificate_has_client_usage_only(ca):
    issued = issue_certificate(
        ca["cert_pem"], ca["private_key_pem"], "vault", [], [], server=False, client=True, validity_hours=1
    )
    cert = load(issued["cert_pem"])
    usages = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert usages == [ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_a_certificate_from_another_ca_does_not_verify(ca):
    other = make_ca("other CA", validity_hours=1)
    issued = issue_certificate(other["cert_pem"], other["private_key_pem"], "x", ["x"], [], True, False, 1)
    with pytest.raises(Exception):
        load(issued["cert_pem"]).verify_directly_issued_by(load(ca["cert_pem"]))
