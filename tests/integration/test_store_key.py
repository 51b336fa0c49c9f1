"""The Transit key for CockroachDB's store key, made on a real OpenBao by pulumi-vault: the database's
own AppRole role makes and unwraps a data key with it; no other token can; the key never leaves Vault.
(CockroachDB itself runs only where a `cockroach` binary exists: tests/integration/test_cockroach_live.py.)"""

import base64

import hvac
import pytest
from hvac import exceptions as vault_errors

from tests.automation import temporary_stack
from tests.support.openbao_dev import dev_openbao, provider_config
from toolchain.env import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "store_key"


def test_only_the_databases_role_uses_the_store_key(tmp_path):
    with dev_openbao(tmp_path) as root, temporary_stack(FIXTURE, tmp_path, "store-key") as stack:
        stack.set_all_config(provider_config(root))
        outputs = stack.up(on_output=lambda _: None).outputs
        assert outputs["secret_id"].secret
        key = outputs["key"].value
        node = hvac.Client(url=root.url)
        node.auth.approle.login(outputs["role_id"].value, outputs["secret_id"].value)
        wrapped = node.write(f"transit-db/datakey/wrapped/{key}", bits=256)["data"]["ciphertext"]
        plaintext = node.write(f"transit-db/decrypt/{key}", ciphertext=wrapped)["data"]["plaintext"]
        assert len(base64.b64decode(plaintext)) == 32
        # The node does nothing else with it: no plaintext data key, no export, no other path.
        for attempt in (lambda: node.write(f"transit-db/datakey/plaintext/{key}"),
                        lambda: node.read(f"transit-db/export/encryption-key/{key}"),
                        lambda: node.write(f"transit-db/keys/{key}/rotate"),
                        lambda: node.sys.list_mounted_secrets_engines()):
            with pytest.raises(vault_errors.Forbidden):
                attempt()
        # Another token (the default policy only) cannot unwrap it.
        other = hvac.Client(url=root.url, token=root.auth.token.create(policies=["default"])["auth"]["client_token"])
        with pytest.raises(vault_errors.Forbidden):
            other.write(f"transit-db/decrypt/{key}", ciphertext=wrapped)
        # The key is not exportable.
        assert root.read(f"transit-db/keys/{key}")["data"]["exportable"] is False
        stack.destroy(on_output=lambda _: None)
        assert "transit-db/" not in root.sys.list_mounted_secrets_engines()["data"]
