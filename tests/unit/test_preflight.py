"""The root program's preflight (stacks/preflight.py): what a valid config needs of this machine."""

import pytest

from stacks.config import ConfigError, validate
from stacks.preflight import check_machine

ROLES = {"reader": {"privileges": ["SELECT"], "schemas": ["public"]}}
EXTERNAL = {
    "target": "external", "vault_addr": "https://vault.internal:8200", "vault_ca_file": "vault-ca.crt",
    "vault_token": "t", "db_host": "db.internal", "db_port": "5432", "db_ca_file": "db-ca.crt",
    "db_stack_admin": "rds_master", "db_stack_admin_password": "p", "roles": ROLES,
}


def test_the_external_targets_ca_files_must_be_there(tmp_path):
    config = validate(EXTERNAL, "ext", tmp_path)
    with pytest.raises(ConfigError, match=f"^config vault_ca_file: no file at {tmp_path}/vault-ca.crt$"):
        check_machine(config)
    (tmp_path / "vault-ca.crt").write_text("")
    with pytest.raises(ConfigError, match=f"^config db_ca_file: no file at {tmp_path}/db-ca.crt$"):
        check_machine(config)
    (tmp_path / "db-ca.crt").write_text("")
    check_machine(config)


def test_a_single_local_node_of_postgresql_needs_nothing_checked(tmp_path):
    check_machine(validate({"roles": ROLES}, "dev", tmp_path))
