"""CockroachDB's certificates and component graph, without a CockroachDB binary.

The certificates are real (made by the same functions the stack's providers
run) and parsed back with `cryptography`; the certs directory is written for
real with its modes; the graph is checked with Pulumi's mocks.
"""

import stat

import pulumi
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from components.cockroach_certs import file_mode, split_addresses
from components.dynamic.tls import issue_certificate, make_ca
from components.local.cockroach import LocalCockroach
from tests.unit.graph import is_secret, registered


def parsed(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def cert_shape(pem: str):
    cert = parsed(pem)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    usages = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = set(san.get_values_for_type(x509.DNSName)) | {
            str(i) for i in san.get_values_for_type(x509.IPAddress)}
    except x509.ExtensionNotFound:
        names = set()
    return cn, usages, names


def test_node_and_client_certificates_have_cockroachdbs_shapes():
    ca = make_ca("crdb CA", 24)
    dns, ips = split_addresses(("127.0.0.1", "localhost", "crdb-0.crdb.db.svc", "::1"))
    assert (dns, ips) == (["localhost", "crdb-0.crdb.db.svc"], ["127.0.0.1", "::1"])
    node = issue_certificate(ca["cert_pem"], ca["private_key_pem"], "node", dns, ips,
                             server=True, client=True, validity_hours=12)
    root = issue_certificate(ca["cert_pem"], ca["private_key_pem"], "root", [], [],
                             server=False, client=True, validity_hours=12)
    assert cert_shape(node["cert_pem"]) == (
        "node", {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH},
        {"localhost", "crdb-0.crdb.db.svc", "127.0.0.1", "::1"})
    assert cert_shape(root["cert_pem"]) == ("root", {ExtendedKeyUsageOID.CLIENT_AUTH}, set())
    # Both chain to the CA.
    for pem in (node["cert_pem"], root["cert_pem"]):
        parsed(pem).verify_directly_issued_by(parsed(ca["cert_pem"]))


def test_certs_directory_modes(tmp_path):
    node = LocalCockroach(tmp_path / "crdb", 26257, 26258)
    files = {"ca.crt": "ca", "node.crt": "n", "node.key": "k", "client.root.crt": "r", "client.root.key": "rk",
             "client.app_admin.key": "ak"}
    node.write_certs(files)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in node.certs_dir.iterdir()}
    assert modes == {name: file_mode(name) for name in files}
    assert {m for n, m in modes.items() if n.endswith(".key")} == {0o600}
    assert {m for n, m in modes.items() if n.endswith(".crt")} == {0o644}
    assert stat.S_IMODE(node.certs_dir.stat().st_mode) == 0o700


@pulumi.runtime.test
def test_cockroach_cluster_graph(monitor):
    from components.cockroach_cluster import CockroachCluster, CockroachClusterArgs
    from components.grants import GrantSpec

    reader = GrantSpec(name="reader", privileges=("SELECT",), schemas=("public",))
    cluster = CockroachCluster("db", CockroachClusterArgs(
        data_dir="/d/cockroach", port=26257, http_port=26258, grant_specs=(reader,), sql_users=("app_admin",)))

    def check(values):
        groups, certs_secret, password_secret = values
        assert groups == {"reader": "dbcreds_group_reader"}
        assert certs_secret and password_secret
        resources = registered(monitor, "pulumi-python:dynamic:Resource")
        assert {"db-certs-ca", "db-certs-node", "db-certs-client-root", "db-certs-client-app_admin",
                "db-admin-bootstrap", "db-node"} <= set(resources)
        node_cert = resources["db-certs-node"]
        assert (node_cert["common_name"], node_cert["server"], node_cert["client"]) == ("node", True, True)
        assert node_cert["dns_names"] == ["localhost"] and node_cert["ip_addresses"] == ["127.0.0.1"]
        root = resources["db-certs-client-root"]
        assert (root["common_name"], root["server"], root["client"]) == ("root", False, True)
        node = resources["db-node"]
        assert (node["port"], node["http_port"], node["database"], node["admin"]) == (26257, 26258, "app",
                                                                                      "dbcreds_admin")
        assert node["groups"] == {"dbcreds_group_reader": {
            "name": "reader", "privileges": ["SELECT"], "schemas": ["public"], "tables": []}}

    return pulumi.Output.all(cluster.group_roles, is_secret(cluster.certs),
                             is_secret(cluster.admin_bootstrap_password)).apply(check)
