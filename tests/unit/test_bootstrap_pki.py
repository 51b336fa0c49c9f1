"""BootstrapPki's resource graph, with Pulumi's mocks (no engine, no servers)."""

import asyncio

import pulumi
import pytest


class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        # Echo the inputs and fill the outputs a create would make.
        outs = dict(args.inputs)
        outs.setdefault("cert_pem", f"cert of {args.name}")
        outs.setdefault("private_key_pem", f"key of {args.name}")
        return f"{args.name}-id", outs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


@pytest.fixture
def monitor():
    pulumi.runtime.set_mocks(Mocks(), project="dbcreds", stack="unit", preview=False)
    return pulumi.runtime.settings.get_monitor()


@pulumi.runtime.test
def test_children_are_parented_named_and_keys_are_secret(monitor):
    from components.bootstrap_pki import BootstrapPki, BootstrapPkiArgs

    pki = BootstrapPki("boot", BootstrapPkiArgs(ca_common_name="unit CA"))
    key_is_secret = pulumi.Output.from_input(asyncio.ensure_future(pki.vault_private_key_pem.is_secret()))

    def check(values):
        ca_cert, vault_cert, secret = values
        assert ca_cert == "cert of boot-ca"
        assert vault_cert == "cert of boot-vault-listener"
        assert secret, "vault_private_key_pem is not secret"
        urns = set(monitor.get_registered_resources())
        child = "urn:pulumi:unit::dbcreds::dbcreds:pki:BootstrapPki$pulumi-python:dynamic:Resource::"
        assert {child + "boot-ca", child + "boot-vault-listener"} <= urns
        listener = next(r for u, r in monitor.get_registered_resources().items() if u.endswith("::boot-vault-listener"))
        assert listener.state["ip_addresses"] == ["127.0.0.1"]
        assert listener.state["dns_names"] == ["localhost"]

    return pulumi.Output.all(pki.ca_cert_pem, pki.vault_cert_pem, key_is_secret).apply(check)
