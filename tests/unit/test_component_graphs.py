"""The components' resource graphs, with Pulumi's mocks (no engine, no servers)."""

import pulumi

from tests.unit.graph import is_secret, registered


@pulumi.runtime.test
def test_bootstrap_pki_children_are_parented_named_and_keys_are_secret(monitor):
    from components.bootstrap_pki import BootstrapPki, BootstrapPkiArgs

    pki = BootstrapPki("boot", BootstrapPkiArgs(ca_common_name="unit CA"))
    key_is_secret = is_secret(pki.vault_private_key_pem)

    def check(values):
        ca_cert, vault_cert, secret = values
        assert ca_cert == "cert_pem of boot-ca"
        assert vault_cert == "cert_pem of boot-vault-listener"
        assert secret, "vault_private_key_pem is not secret"
        urns = set(monitor.get_registered_resources())
        child = "urn:pulumi:unit::dbcreds::dbcreds:pki:BootstrapPki$pulumi-python:dynamic:Resource::"
        assert {child + "boot-ca", child + "boot-vault-listener", child + "boot-database"} <= urns
        listener = registered(monitor, "pulumi-python:dynamic:Resource")["boot-vault-listener"]
        assert listener["ip_addresses"] == ["127.0.0.1"]
        assert listener["dns_names"] == ["localhost"]

    return pulumi.Output.all(pki.ca_cert_pem, pki.vault_cert_pem, key_is_secret, pki.database_cert_pem).apply(
        lambda values: check(values[:3]))


def urns_under(monitor, component_type: str) -> set[str]:
    """The names of the dynamic resources (of any dynamic type) the component registered."""
    prefix = f"urn:pulumi:unit::dbcreds::{component_type}$pulumi-python:dynamic"
    return {u.rsplit("::", 1)[1] for u in monitor.get_registered_resources() if u.startswith(prefix)}


def test_vault_server_keeps_its_token_secret(monitor):
    from components.vault_server import VaultServer, VaultServerArgs

    @pulumi.runtime.test
    def build():
        server = VaultServer("v", VaultServerArgs(data_dir="/d/openbao", port=18200, cluster_port=18201,
                                                  ca_pem="ca", cert_pem="cert", key_pem="key",
                                                  database_ca_pem="db ca"))

        def check(values):
            token_secret, ca_pem = values
            assert token_secret and ca_pem == "ca"

        return pulumi.Output.all(is_secret(server.admin_token), server.ca_pem).apply(check)

    build()
    # Once every registration is done: the server, and the resource that keeps it running.
    assert urns_under(monitor, "dbcreds:vault:VaultServer") == {"v-openbao", "v-running"}
    openbao = registered(monitor, "pulumi-python:dynamic/dbcreds:OpenBaoServer")["v-openbao"]
    running = registered(monitor, "pulumi-python:dynamic:Resource")["v-running"]
    assert (openbao["port"], openbao["key_shares"], openbao["database_ca_pem"]) == (18200, 1, "db ca")
    assert (running["kind"], running["data_dir"], running["second_port"]) == ("openbao", "/d/openbao", 18201)


def test_postgres_server_has_a_random_secret_bootstrap_password(monitor):
    from components.postgres_server import PostgresServer, PostgresServerArgs

    @pulumi.runtime.test
    def build():
        server = PostgresServer("db", PostgresServerArgs(data_dir="/d/postgres", port=15432,
                                                         ca_pem="ca", cert_pem="cert", key_pem="key"))

        def check(values):
            password_secret, database, admin = values
            assert password_secret and (database, admin) == ("app", "dbcreds_admin")

        return pulumi.Output.all(is_secret(server.admin_bootstrap_password), server.database,
                                 server.admin).apply(check)

    build()
    assert urns_under(monitor, "dbcreds:database:PostgresServer") == {"db-admin-bootstrap", "db-postgres",
                                                                       "db-running"}
    postgres = registered(monitor, "pulumi-python:dynamic:Resource")["db-postgres"]
    # Passed to the server resource as a secret (the wire form of a secret value).
    assert postgres["admin_password"]["value"] == "result of db-admin-bootstrap"
    assert pulumi.runtime.rpc._special_secret_sig in postgres["admin_password"].values()
