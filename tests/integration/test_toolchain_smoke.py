"""The built toolchain, end to end: CLI, language host, dynamic-provider plugin, state.

Runs the program in tests/fixtures/smoke through the Automation API with the
binaries from `make bootstrap`, offline, on a throwaway file backend.
"""

import time

import hvac
import pytest
from pulumi import automation as auto
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.automation import state_text, temporary_stack, updates_only
from tests.support.openbao_dev import dev_openbao
from toolchain.env import ROOT

SMOKE = ROOT / "tests" / "fixtures" / "smoke"


def quiet(_line: str) -> None:
    """Keeps engine output (which never holds secret values) out of the test log."""


def test_up_update_destroy_with_random_tls_and_a_dynamic_provider(tmp_path):
    with temporary_stack(SMOKE, tmp_path, "smoke") as stack:
        result = stack.up(on_output=quiet)
        assert result.summary.result == "succeeded"
        outputs = result.outputs

        password = outputs["password"]
        assert password.secret and len(password.value) == 24 and password.value.isalnum()

        ca_pem, key_pem = outputs["ca_cert_pem"], outputs["ca_private_key_pem"]
        assert key_pem.secret and not ca_pem.secret
        cert = x509.load_pem_x509_certificate(ca_pem.value.encode())
        assert cert.subject.rfc4514_string() == "CN=smoke CA"
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        key = serialization.load_pem_private_key(key_pem.value.encode(), password=None)
        assert key.public_key().public_numbers() == cert.public_key().public_numbers()

        # The state holds the secrets only as ciphertext.
        state = state_text(stack)
        assert '"ciphertext"' in state
        assert password.value not in state
        assert key_pem.value.splitlines()[1] not in state

        # A second run of the same program changes nothing.
        stack.preview(on_output=quiet, expect_no_changes=True)

        # A changed input replaces the CA's certificate (its key and the password stay).
        stack.set_config("ca_common_name", auto.ConfigValue(value="renamed CA"))
        updated = stack.up(on_output=quiet).outputs
        assert updated["password"].value == password.value
        renamed = x509.load_pem_x509_certificate(updated["ca_cert_pem"].value.encode())
        assert renamed.subject.rfc4514_string() == "CN=renamed CA" and renamed.serial_number != cert.serial_number
        assert updated["ca_private_key_pem"].value == key_pem.value
        assert isinstance(updated["schedule_created_at"].value, int)

        stack.destroy(on_output=quiet)
        assert not stack.export_stack().deployment.get("resources")


@pytest.fixture
def throwaway_openbao(tmp_path):
    with dev_openbao(tmp_path) as client:
        yield client


def test_vault_provider_and_a_rotation(tmp_path, throwaway_openbao):
    """pulumi-vault, built from its source release: create, no-op preview, a secret_id replaced by
    its Rotation once due, destroy."""
    vault = throwaway_openbao
    with temporary_stack(SMOKE, tmp_path, "smoke-vault") as stack:
        stack.set_all_config({
            "with_vault": auto.ConfigValue("true"),
            "mount_path": auto.ConfigValue("smoke-kv"),
            "rotate_after": auto.ConfigValue("20"),
            "vault:address": auto.ConfigValue(vault.url),
            "vault:token": auto.ConfigValue(vault.token, secret=True),
        })
        started = time.monotonic()
        outputs = stack.up(on_output=quiet).outputs
        assert "smoke-kv/" in vault.sys.list_mounted_secrets_engines()["data"]
        policy = vault.sys.read_policy("smoke-reader")["data"]["rules"]
        assert 'path "smoke-kv/data/*"' in policy
        assert outputs["secret_id"].secret
        first = outputs["secret_id"].value
        vault.auth.approle.login(outputs["role_id"].value, first, mount_point="smoke-approle", use_token=False)
        # Right after up nothing changes (a secret_id's ttl once planned a replacement every time).
        stack.preview(on_output=quiet, expect_no_changes=True)
        time.sleep(max(0.0, started + 21 - time.monotonic()))
        # Due: the rotation and the secret_id are replaced, the old secret_id is gone.
        assert stack.preview(on_output=quiet).change_summary == updates_only(stack, 2, "replace")
        second = stack.up(on_output=quiet).outputs["secret_id"].value
        assert second != first
        vault.auth.approle.login(outputs["role_id"].value, second, mount_point="smoke-approle", use_token=False)
        with pytest.raises(hvac.exceptions.InvalidRequest):
            vault.auth.approle.login(outputs["role_id"].value, first, mount_point="smoke-approle", use_token=False)
        stack.destroy(on_output=quiet)
        assert "smoke-kv/" not in vault.sys.list_mounted_secrets_engines()["data"]
        assert "smoke-reader" not in vault.sys.list_policies()["data"]["policies"]
