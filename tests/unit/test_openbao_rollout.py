"""A local OpenBao's release: which node moves when (components/local/providers/openbao_rollout.py),
its version read from `bao version` and from a node's health report, and the `vault_binary` setting."""

from pathlib import Path

import pytest

from components.local.providers.openbao_rollout import rollout_order
from components.servers.openbao import LocalOpenBaoError, parse_version, version_text
from components.servers.openbao_release import downgrade_refusal
from stacks.config import ConfigError, validate


def test_the_standbys_move_first_and_the_active_node_last():
    states = {"a": "active", "b": "standby", "c": "standby"}
    assert rollout_order(states) == ["b", "c", "a"]
    # A node that is down or sealed moves before the active one too; a single node alone.
    assert rollout_order({"a": "standby", "b": "active", "c": "down"}) == ["a", "c", "b"]
    assert rollout_order({"a": "active"}) == ["a"]


def test_a_release_is_read_from_bao_version_and_orders_as_numbers():
    line = "OpenBao v2.7.2 (9e0a0d3c3504a0a00b45e61355afac5e35c78379), committed 2026-10-26T20:32:27Z"
    assert parse_version(line) == (2, 7, 2)
    assert parse_version("OpenBao v2.10.0") > parse_version("OpenBao v2.9.9")
    assert version_text((2, 7, 1)) == "2.7.1"
    with pytest.raises(LocalOpenBaoError, match="not an OpenBao version line"):
        parse_version("Vault v1.17.0")


def test_vault_binary_is_an_absolute_path_on_the_targets_that_run_openbao():
    roles = {"reader": {"privileges": ["SELECT"], "schemas": ["public"]}}
    assert validate({"roles": roles}, "dev", Path("/srv")).vault.binary == ""
    assert validate({"roles": roles, "vault_binary": "/opt/bao/2.7.1/bao"}, "dev", Path("/srv")).vault.binary == \
        "/opt/bao/2.7.1/bao"
    with pytest.raises(ConfigError, match=r"^config vault_binary: must be an OpenBao binary's absolute path"):
        validate({"roles": roles, "vault_binary": "bin/bao"}, "dev", Path("/srv"))
    # The docker target builds its OpenBao image from it.
    assert validate({"roles": roles, "target": "docker", "vault_binary": "/opt/bao"}, "docker",
                    Path("/srv")).vault.binary == "/opt/bao"
    with pytest.raises(ConfigError, match=r"^config vault_binary: means nothing on the external target"):
        validate({"roles": roles, "target": "external", "vault_binary": "/opt/bao"}, "external", Path("/srv"))


def test_an_older_release_than_the_servers_run_is_refused_naming_what_to_do():
    assert downgrade_refusal((2, 7, 2), None) == "" and downgrade_refusal((2, 7, 2), "2.7.2") == ""
    assert downgrade_refusal((2, 10, 0), "2.9.1") == ""
    assert downgrade_refusal((2, 6, 2), "2.7.2") == (
        "OpenBao 2.6.2 is older than 2.7.2, which the nodes run; OpenBao does not downgrade its storage: restore a "
        "backup taken before the upgrade instead")
