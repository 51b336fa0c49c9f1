"""CockroachDB's certificates and component graph, without a CockroachDB binary.

The certs directory is written for real with its modes; the graph, with the
certificates' shapes CockroachDB requires (pulumi-tls's inputs), is checked
with Pulumi's mocks.
"""

import stat

import pulumi

from components.cockroach_certs import split_addresses
from components.servers.cockroach import LocalCockroach, file_mode
from tests.unit.graph import is_secret, registered


def test_addresses_split_into_dns_names_and_ips():
    dns, ips = split_addresses(("127.0.0.1", "localhost", "crdb-0.crdb.db.svc", "::1"))
    assert (dns, ips) == (["localhost", "crdb-0.crdb.db.svc"], ["127.0.0.1", "::1"])


def test_certs_directory_modes(tmp_path):
    node = LocalCockroach(tmp_path / "crdb", 26257, 26258)
    files = {"ca.crt": "ca", "node.crt": "n", "node.key": "k", "client.root.crt": "r", "client.root.key": "rk",
             "client.app_admin.key": "ak"}
    node.write_certs(files)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in node.certs_dir.iterdir()}
    # CockroachDB refuses a key readable by others; certificates are public.
    assert modes == {"ca.crt": 0o644, "node.crt": 0o644, "node.key": 0o600, "client.root.crt": 0o644,
                     "client.root.key": 0o600, "client.app_admin.key": 0o600}
    assert {name: file_mode(name) for name in files} == modes
    assert stat.S_IMODE(node.certs_dir.stat().st_mode) == 0o700


@pulumi.runtime.test
def test_cockroach_node_graph(monitor, ran):
    from components.local.cockroach_node import CockroachNode, CockroachNodeArgs
    from components.grants import GrantSpec

    reader = GrantSpec(name="reader", privileges=("SELECT",), schemas=("public",))
    node = CockroachNode("db", CockroachNodeArgs(
        data_dir="/d/cockroach", port=26257, http_port=26258, grant_specs=(reader,), sql_users=("app_admin",)))

    def check(values):
        groups, certs_secret, password_secret = values
        assert groups == {"reader": "dbcreds_group_reader"}
        assert certs_secret and password_secret
        requests = registered(monitor, "tls:index/certRequest:CertRequest")
        signed = registered(monitor, "tls:index/locallySignedCert:LocallySignedCert")
        assert set(signed) == {"db-certs-node", "db-certs-client-root", "db-certs-client-app_admin"}
        assert set(registered(monitor, "tls:index/selfSignedCert:SelfSignedCert")) == {"db-certs-ca"}
        assert set(registered(monitor, "random:index/randomPassword:RandomPassword")) == {"db-admin-bootstrap"}
        # CockroachDB's shapes: `node` serves and dials (both usages), with a SAN per address;
        # a client certificate is named after its user and only authenticates clients.
        node_request = requests["db-certs-node-request"]
        assert node_request["subject"]["commonName"] == "node"
        assert (node_request["dnsNames"], node_request["ipAddresses"]) == (["localhost"], ["127.0.0.1"])
        assert {"server_auth", "client_auth"} <= set(signed["db-certs-node"]["allowedUses"])
        assert requests["db-certs-client-root-request"]["subject"]["commonName"] == "root"
        assert "client_auth" in signed["db-certs-client-root"]["allowedUses"]
        assert "server_auth" not in signed["db-certs-client-root"]["allowedUses"]
        node = registered(monitor, "pulumi-python:dynamic:Resource")["db-node"]
        assert (node["port"], node["http_port"], node["database"], node["admin"]) == (26257, 26258, "app",
                                                                                      "dbcreds_admin")
        assert node["groups"] == {"dbcreds_group_reader": {
            "role": "reader", "privileges": ["SELECT"], "schemas": ["public"], "tables": []}}

    return pulumi.Output.all(node.group_roles, is_secret(node.certs),
                             is_secret(node.admin_bootstrap_password)).apply(ran(check))
