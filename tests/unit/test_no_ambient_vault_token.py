"""The stack's clients never send an operator's own Vault token (hvac falls back to VAULT_TOKEN and
~/.vault-token when given none): it belongs to another Vault."""

from pathlib import Path

from components.servers.openbao import LocalOpenBao
from components.vault.check_plan import Target
from components.vault.checks import CaFiles, vault_client

TARGET = Target(vault_addr="https://127.0.0.1:8200", vault_ca_pem="ca", db_host="127.0.0.1", db_port=5432,
                db_name="app", db_ca_pem="ca")


def test_no_client_of_the_stack_takes_the_environments_token(monkeypatch, tmp_path):
    monkeypatch.setenv("VAULT_TOKEN", "an-operators-token")
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".vault-token").write_text("another-token")
    files = CaFiles(TARGET)
    try:
        assert not vault_client(TARGET, files).token
        assert vault_client(TARGET, files, "the-stacks").token == "the-stacks"
    finally:
        files.close()
    assert not LocalOpenBao(Path(tmp_path), 8200, 8201).client().token
