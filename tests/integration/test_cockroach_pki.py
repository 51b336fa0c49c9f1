"""A CockroachDB node's certificates issued by Vault's PKI on a real OpenBao (pulumi-vault), checked
the way a node and its clients check them: `node` serves and dials, `root` only dials, both chain
through Vault's intermediate to the bootstrap CA. (CockroachDB itself runs only where a `cockroach`
binary exists: tests/integration/test_cockroach_live.py.)"""

import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hvac.exceptions import InvalidRequest

from tests.automation import temporary_stack
from tests.support.openbao_dev import dev_openbao, provider_config
from toolchain.env import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "cockroach_pki"


def certificates(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode())


def usages(cert: x509.Certificate) -> set:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def public_der(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def common_name(cert: x509.Certificate) -> str:
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def test_vaults_pki_issues_the_nodes_and_roots_certificates(tmp_path):
    with dev_openbao(tmp_path) as root, temporary_stack(FIXTURE, tmp_path, "crdb-pki") as stack:
        stack.set_all_config(provider_config(root))
        outputs = stack.up(on_output=lambda _: None).outputs
        assert outputs["files"].secret
        files = outputs["files"].value
        assert sorted(files) == ["ca.crt", "client.root.crt", "client.root.key", "node.crt", "node.key"]
        (anchor,) = certificates(outputs["bootstrap_ca_pem"].value)
        intermediate, ca = certificates(files["ca.crt"])
        assert ca == anchor and intermediate.issuer == anchor.subject
        intermediate.verify_directly_issued_by(anchor)

        node, node_intermediate = certificates(files["node.crt"])
        assert node_intermediate == intermediate
        node.verify_directly_issued_by(intermediate)
        assert common_name(node) == "node"
        assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= usages(node)
        sans = node.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "localhost" in sans.get_values_for_type(x509.DNSName)
        assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)

        client, client_intermediate = certificates(files["client.root.crt"])
        assert client_intermediate == intermediate
        client.verify_directly_issued_by(intermediate)
        assert common_name(client) == "root"
        assert usages(client) == {ExtendedKeyUsageOID.CLIENT_AUTH}
        for key, cert in (("node.key", node), ("client.root.key", client)):
            private = serialization.load_pem_private_key(files[key].encode(), password=None)
            # PKCS#8, as CockroachDB reads it, and the key of its certificate.
            pkcs8 = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode()
            assert files[key].strip() == pkcs8.strip()
            assert public_der(private.public_key()) == public_der(cert.public_key())
        # The client role issues only the names it lists: a certificate for another user is refused, by
        # the role's own rule (a 400 naming the common name), not by any other failure.
        with pytest.raises(InvalidRequest, match=r"^common name admin not allowed by this role, on post "):
            root.secrets.pki.generate_certificate("database-client", "admin", mount_point="pki-db")
        stack.destroy(on_output=lambda _: None)
        assert "pki-db/" not in root.sys.list_mounted_secrets_engines()["data"]
