"""Pulumi's mocks for the component-graph tests: no engine, no servers."""

import pulumi
import pytest

#: Outputs a create would compute, by resource type, filled in by the mocks.
COMPUTED = {
    "pulumi-python:dynamic:Resource": ("host",),
    "tls:index/privateKey:PrivateKey": ("privateKeyPem", "privateKeyPemPkcs8"),
    "tls:index/selfSignedCert:SelfSignedCert": ("certPem",),
    "tls:index/certRequest:CertRequest": ("certRequestPem",),
    "tls:index/locallySignedCert:LocallySignedCert": ("certPem",),
    "random:index/randomPassword:RandomPassword": ("result",),
    "vault:pkiSecret/secretBackendIntermediateCertRequest:SecretBackendIntermediateCertRequest": ("csr",),
    "vault:pkiSecret/secretBackendCert:SecretBackendCert": ("certificate", "issuingCa", "privateKey"),
    "pulumi-python:dynamic/dbcreds:OpenBaoServer": ("root_token", "address"),
    "pulumi-python:dynamic/dbcreds:OpenBaoInit": ("admin_token", "unseal_keys", "recovery_keys"),
    "pulumi-python:dynamic/dbcreds:Rotation": ("created_at",),
    "docker:index/image:Image": ("repoDigest",),
    "vault:appRole/authBackendRole:AuthBackendRole": ("roleId",),
    "vault:appRole/authBackendRoleSecretId:AuthBackendRoleSecretId": ("secretId",),
}


class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        outs = dict(args.inputs)
        for key in COMPUTED.get(args.typ, ()):
            if outs.get(key) is None:
                outs[key] = f"{key} of {args.name}"
        return f"{args.name}-id", outs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


@pytest.fixture
def monitor():
    """The mock monitor, after set_mocks: it records every registered resource."""
    pulumi.runtime.set_mocks(Mocks(), project="dbcreds", stack="unit", preview=False)
    return pulumi.runtime.settings.get_monitor()


@pytest.fixture
def ran():
    """Wraps the checks a graph test hands to `apply`: the test fails unless every one of them ran
    (an `apply` on an output that never resolves would otherwise pass without checking)."""
    wrapped: list[str] = []
    called: list[str] = []

    def track(check):
        wrapped.append(check.__name__)

        def run(*args):
            called.append(check.__name__)
            return check(*args)

        return run

    yield track
    assert wrapped and sorted(called) == sorted(wrapped), f"checks that never ran: {set(wrapped) - set(called)}"
