"""The external target's vault_namespace: its validation, the paths it splits between the namespace and
the root one, and what the root program hands the Vault provider, the token's check and the post-deploy
checks with it and without it."""

from pathlib import Path

import pytest

from components.external_rights import by_namespace, from_root_namespace
from stacks import external_target
from stacks.config import ConfigError, validate
from tests.unit.graph import registered, unwrap
from tests.unit.test_root_program import CHECKS, external_monitor, run_external_program  # noqa: F401 - the fixture

ROLES = {"reader": {"privileges": ["SELECT"], "schemas": ["public"]}}
EXTERNAL = {
    "target": "external", "vault_addr": "https://vault.internal:8200", "vault_ca_file": "tls/vault-ca.crt",
    "vault_database_ca_file": "/etc/openbao/db-ca.crt", "vault_token": "s.operator-token",
    "db_host": "db.internal", "db_port": "5432", "db_ca_file": "tls/db-ca.crt", "db_stack_admin": "rds_master",
    "db_stack_admin_password": "master-password", "roles": ROLES,
}


def external(**settings):
    return validate({**EXTERNAL, **settings}, "ext", Path("/srv/project"))


def test_without_a_vault_namespace_the_stack_works_in_the_root_namespace():
    assert external().target.vault_namespace == ""
    assert external(vault_namespace="").target.vault_namespace == ""
    assert external_target.exports(external(), None) == {}


@pytest.mark.parametrize("namespace", ["team-a", "org/team_a", "A1", "a/b/c-d"])
def test_a_vault_namespace_is_path_segments_of_letters_digits_underscores_and_hyphens(namespace):
    config = external(vault_namespace=namespace)
    assert config.target.vault_namespace == namespace
    # Its clients are told to send it.
    assert external_target.exports(config, None) == {"vault_namespace": namespace}


@pytest.mark.parametrize("namespace", ["/team-a", "team-a/", "a//b", "team a", "team.a", "ns-ä", 5, ["a"]])
def test_a_bad_vault_namespace_is_refused_naming_the_field(namespace):
    with pytest.raises(ConfigError, match=r"^config vault_namespace: must be empty or one or more path segments"):
        external(vault_namespace=namespace)


@pytest.mark.parametrize("target", ["local", "docker", "kubernetes"])
def test_a_vault_namespace_means_nothing_in_a_vault_the_stack_runs(target):
    with pytest.raises(ConfigError, match=f"^config vault_namespace: means nothing on the {target} target "
                                          r"\(it is for external\)"):
        validate({"target": target, "vault_namespace": "team-a", "roles": ROLES}, "s", Path("/srv/project"))
    # Left at its default, it is no setting.
    assert validate({"target": target, "vault_namespace": "", "roles": ROLES}, "s", Path("/srv/project"))


def test_the_root_namespace_keeps_the_audit_devices_and_the_tokens_lookup_the_namespace_the_rest():
    required = external_target.vault_capabilities(external(vault_namespace="team-a"))
    inside, in_root = by_namespace(required)
    assert in_root == {"sys/capabilities-self": ("update",), "sys/audit": ("read", "sudo"),
                       "auth/token/lookup-self": ("read",)}
    assert set(inside) == set(required) - {"sys/audit", "auth/token/lookup-self"}
    assert inside["sys/capabilities-self"] == ("update",)
    # A root-namespace policy names the namespace's paths under it, the root's as they are.
    policy = from_root_namespace(required, "org/team-a")
    assert set(policy) == {*in_root, *(f"org/team-a/{path}" for path in inside)}
    assert policy["org/team-a/sys/mounts/database"] == ("create", "read", "update", "delete")
    assert policy["sys/audit"] == ("read", "sudo")
    # Without a namespace, what the stack needs, unchanged.
    assert from_root_namespace(required, "") == {path: tuple(caps) for path, caps in required.items()}


def test_with_a_vault_namespace_the_provider_the_tokens_check_and_the_checks_work_in_it(
        external_monitor, monkeypatch, tmp_path):  # noqa: F811 - the fixture
    run_external_program(monkeypatch, tmp_path, namespace="team-a")
    (provider,) = registered(external_monitor, "pulumi:providers:vault").values()
    assert provider["namespace"] == "team-a"
    (rights,) = registered(external_monitor, "pulumi-python:dynamic/dbcreds:VaultTokenRights").values()
    assert rights["namespace"] == "team-a"
    assert {path for path, _ in rights["root_required"]} == {"sys/capabilities-self", "sys/audit",
                                                              "auth/token/lookup-self"}
    assert "sys/audit" not in {path for path, _ in rights["required"]}
    (checks,) = registered(external_monitor, CHECKS).values()
    assert unwrap(checks["target"])["vault_namespace"] == "team-a"


def test_without_a_vault_namespace_nothing_names_one(external_monitor, monkeypatch, tmp_path):  # noqa: F811
    run_external_program(monkeypatch, tmp_path)
    (provider,) = registered(external_monitor, "pulumi:providers:vault").values()
    assert "namespace" not in provider
    (rights,) = registered(external_monitor, "pulumi-python:dynamic/dbcreds:VaultTokenRights").values()
    assert "namespace" not in rights and "root_required" not in rights
    assert ["sys/audit", ["read", "sudo"]] in rights["required"]
    (checks,) = registered(external_monitor, CHECKS).values()
    assert "vault_namespace" not in unwrap(checks["target"])
