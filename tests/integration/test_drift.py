"""`make drift`'s code (toolchain/drift.py) on a dev stack that is up, as CI runs it after `up` (the
shared `platform`, its modules' first): nothing but the post-deploy checks would change (exit 0); a
role's TTL changed through Vault's API is drift, named with its field (exit 1); `up` puts it back and
the stack is clean again; a stack that does not exist cannot be read (exit 2)."""

from pathlib import Path

import pytest

from toolchain import drift


@pytest.fixture(scope="module")
def running(platform):
    return platform


def make_drift(running, capfd, name: str | None = None) -> tuple[int, str]:
    """`make drift` on the test's stack (or on `name`): its exit status and what it said."""
    capfd.readouterr()
    workspace = running.stack.workspace
    status = drift.drift(name or running.stack.name, workspace.env_vars, Path(workspace.work_dir))
    return status, capfd.readouterr().err


def test_a_stack_just_up_has_no_drift(running, capfd):
    status, said = make_drift(running, capfd)
    assert status == 0, said
    assert "no drift" in said and "[drift] drift:" not in said


def test_a_role_changed_through_vaults_api_is_drift_named_and_up_puts_it_back(running, capfd):
    vault, mount = running.admin(), running.outputs["database_mount"]
    role = vault.read(f"{mount}/roles/app")["data"]
    vault.write(f"{mount}/roles/app", db_name=role["db_name"], creation_statements=role["creation_statements"],
                revocation_statements=role["revocation_statements"], default_ttl=60, max_ttl=role["max_ttl"])

    status, said = make_drift(running, capfd)
    assert status == 1, said
    changed = [line for line in said.splitlines() if line.startswith("[drift] drift:")]
    assert changed == ["[drift] drift: update vault:database/secretBackendRole:SecretBackendRole engine-role-app: "
                       "defaultTtl"], said
    assert "1 resource(s) differ from the program" in said

    running.up(refresh=True)
    assert vault.read(f"{mount}/roles/app")["data"]["default_ttl"] == role["default_ttl"]
    status, said = make_drift(running, capfd)
    assert status == 0, said


def test_a_stack_that_does_not_exist_cannot_be_read(running, capfd):
    status, said = make_drift(running, capfd, "no-such-stack")
    assert status == 2
    assert "stack 'no-such-stack' does not exist" in said
