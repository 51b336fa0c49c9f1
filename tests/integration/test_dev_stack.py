"""The platform program through the Automation API, with the real engine, OpenBao and state.

What the dev stack holds so far: the bootstrap PKI and a real OpenBao server
(raft, TLS, audit device), initialised and unsealed by the stack.
"""

import os
import signal
import time

import hvac
import pytest
import requests
from pulumi import automation as auto

from tests.automation import root_program, state_text, temporary_stack
from tests.support.postgres import free_port


def quiet(_line: str) -> None:
    """Keeps engine output out of the test log."""


@pytest.fixture
def stack(tmp_path):
    with temporary_stack(root_program(tmp_path), tmp_path, "dev-it") as stack:
        vault_port = free_port()
        stack.set_all_config({
            "dbcreds:data_dir": auto.ConfigValue(str(tmp_path / "data")),
            "dbcreds:vault_port": auto.ConfigValue(str(vault_port)),
            "dbcreds:vault_cluster_port": auto.ConfigValue(str(free_port())),
        })
        yield stack


def vault_client(outputs, tmp_path) -> hvac.Client:
    ca_file = tmp_path / "vault-ca.pem"
    ca_file.write_text(outputs["vault_ca_pem"].value)
    return hvac.Client(url=outputs["vault_addr"].value, token=outputs["vault_admin_token"].value,
                       verify=str(ca_file), timeout=10)


def test_vault_server_lifecycle(stack, tmp_path):
    outputs = stack.up(on_output=quiet).outputs
    assert outputs["vault_admin_token"].secret
    vault = vault_client(outputs, tmp_path)
    assert vault.sys.is_initialized() and not vault.sys.is_sealed() and vault.is_authenticated()
    devices = vault.sys.list_enabled_audit_devices()["data"]
    assert devices["file/"]["options"]["file_path"] == outputs["vault_audit_log"].value
    vault.sys.enable_secrets_engine("kv", path="kv", options={"version": "2"})
    vault.secrets.kv.v2.create_or_update_secret("probe", secret={"kept": "yes"}, mount_point="kv")

    # TLS only: a plaintext request to the listener is not served.
    plain = requests.get(outputs["vault_addr"].value.replace("https://", "http://") + "/v1/sys/health", timeout=5)
    assert plain.status_code == 400

    # Root token and unseal keys are in the state only as ciphertext.
    assert vault.token not in state_text(stack)

    stack.preview(on_output=quiet, expect_no_changes=True)

    # A machine restart: the process is gone, the data folder stays.
    pid = int((tmp_path / "data" / "openbao" / "bao.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    assert stack.preview(on_output=quiet).change_summary.get("update") == 1
    stack.up(on_output=quiet)
    assert not vault.sys.is_sealed()
    read = vault.secrets.kv.v2.read_secret_version("probe", mount_point="kv", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"kept": "yes"}
    # The audit device logs every request, with the token hashed.
    audit = (tmp_path / "data" / "openbao" / "audit" / "audit.log").read_text()
    assert '"path":"kv/data/probe"' in audit and vault.token not in audit

    stack.destroy(on_output=quiet)
    assert not (tmp_path / "data" / "openbao").exists()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(outputs["vault_addr"].value + "/v1/sys/health", verify=False, timeout=5)
