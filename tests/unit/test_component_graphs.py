"""The components' resource graphs, with Pulumi's mocks (no engine, no servers)."""

import asyncio

import pulumi
import pytest


class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        # Echo the inputs and fill the outputs a create would make.
        outs = dict(args.inputs)
        for key in ("cert_pem", "private_key_pem", "root_token", "result", "address", "host"):
            if outs.get(key) is None:
                outs[key] = f"{key} of {args.name}"
        return f"{args.name}-id", outs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


@pytest.fixture
def monitor():
    pulumi.runtime.set_mocks(Mocks(), project="dbcreds", stack="unit", preview=False)
    return pulumi.runtime.settings.get_monitor()


@pulumi.runtime.test
def test_bootstrap_pki_children_are_parented_named_and_keys_are_secret(monitor):
    from components.bootstrap_pki import BootstrapPki, BootstrapPkiArgs

    pki = BootstrapPki("boot", BootstrapPkiArgs(ca_common_name="unit CA"))
    key_is_secret = pulumi.Output.from_input(asyncio.ensure_future(pki.vault_private_key_pem.is_secret()))

    def check(values):
        ca_cert, vault_cert, secret = values
        assert ca_cert == "cert_pem of boot-ca"
        assert vault_cert == "cert_pem of boot-vault-listener"
        assert secret, "vault_private_key_pem is not secret"
        urns = set(monitor.get_registered_resources())
        child = "urn:pulumi:unit::dbcreds::dbcreds:pki:BootstrapPki$pulumi-python:dynamic:Resource::"
        assert {child + "boot-ca", child + "boot-vault-listener", child + "boot-database"} <= urns
        listener = next(r for u, r in monitor.get_registered_resources().items() if u.endswith("::boot-vault-listener"))
        assert listener.state["ip_addresses"] == ["127.0.0.1"]
        assert listener.state["dns_names"] == ["localhost"]

    return pulumi.Output.all(pki.ca_cert_pem, pki.vault_cert_pem, key_is_secret).apply(check)


def urns_under(monitor, component_type: str) -> set[str]:
    prefix = f"urn:pulumi:unit::dbcreds::{component_type}$pulumi-python:dynamic:Resource::"
    return {u.removeprefix(prefix) for u in monitor.get_registered_resources() if u.startswith(prefix)}


def secret(output: pulumi.Output) -> pulumi.Output:
    return pulumi.Output.from_input(asyncio.ensure_future(output.is_secret()))


@pulumi.runtime.test
def test_vault_server_keeps_its_token_secret(monitor):
    from components.vault_server import VaultServer, VaultServerArgs

    server = VaultServer("v", VaultServerArgs(data_dir="/d/openbao", port=18200, cluster_port=18201,
                                              ca_pem="ca", cert_pem="cert", key_pem="key"))

    def check(values):
        token_secret, ca_pem = values
        assert token_secret and ca_pem == "ca"
        assert urns_under(monitor, "dbcreds:vault:VaultServer") == {"v-openbao"}
        (openbao,) = [r for u, r in monitor.get_registered_resources().items() if u.endswith("::v-openbao")]
        assert (openbao.state["port"], openbao.state["key_shares"]) == (18200, 1)

    return pulumi.Output.all(secret(server.admin_token), server.ca_pem).apply(check)


@pulumi.runtime.test
def test_postgres_server_has_a_random_secret_bootstrap_password(monitor):
    from components.postgres_server import PostgresServer, PostgresServerArgs

    server = PostgresServer("db", PostgresServerArgs(data_dir="/d/postgres", port=15432,
                                                     ca_pem="ca", cert_pem="cert", key_pem="key"))

    def check(values):
        password_secret, database, admin = values
        assert password_secret and (database, admin) == ("app", "dbcreds_admin")
        assert urns_under(monitor, "dbcreds:database:PostgresServer") == {"db-admin-bootstrap", "db-postgres"}
        (postgres,) = [r for u, r in monitor.get_registered_resources().items() if u.endswith("::db-postgres")]
        # Passed to the server resource as a secret (the wire form of a secret value).
        assert postgres.state["admin_password"]["value"] == "result of db-admin-bootstrap"
        assert pulumi.runtime.rpc._special_secret_sig in postgres.state["admin_password"].values()

    return pulumi.Output.all(secret(server.admin_bootstrap_password), server.database, server.admin).apply(check)
