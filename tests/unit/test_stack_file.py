"""The encryptionsalt stays out of the stack file between commands (toolchain/stack_file.py)."""

import pytest

from toolchain.stack_file import StackFileError, salt_file, salted

CONFIG = "config:\n  dbcreds:vault_port: 18200\n"


def test_a_salt_made_during_a_command_is_kept_aside_and_the_file_restored(tmp_path):
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(CONFIG)
    with salted("dev", tmp_path):
        # What the CLI does the first time: it rewrites the file with a salt.
        stack_file.write_text('config:\n  dbcreds:vault_port: "18200"\nencryptionsalt: v1:abc\n')
    assert stack_file.read_text() == CONFIG
    assert salt_file("dev", tmp_path).read_text() == "v1:abc\n"
    with salted("dev", tmp_path):
        assert stack_file.read_text() == CONFIG + "encryptionsalt: v1:abc\n"
    assert stack_file.read_text() == CONFIG


def test_the_file_is_restored_when_the_command_fails(tmp_path):
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(CONFIG)
    salt_file("dev", tmp_path).parent.mkdir(parents=True)
    salt_file("dev", tmp_path).write_text("v1:abc\n")
    with pytest.raises(RuntimeError), salted("dev", tmp_path):
        raise RuntimeError("pulumi up failed")
    assert stack_file.read_text() == CONFIG


def test_a_salt_left_in_the_file_by_hand_is_moved_aside(tmp_path):
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(CONFIG + "encryptionsalt: v1:own\n")
    with salted("dev", tmp_path):
        assert stack_file.read_text() == CONFIG + "encryptionsalt: v1:own\n"
    assert stack_file.read_text() == CONFIG
    assert salt_file("dev", tmp_path).read_text() == "v1:own\n"


def test_no_stack_file_of_the_repository_carries_a_salt():
    """A committed salt breaks every other checkout ("incorrect passphrase")."""
    from toolchain.env import ROOT

    for stack_file in ROOT.glob("Pulumi.*.yaml"):
        assert "encryptionsalt" not in stack_file.read_text().replace("`encryptionsalt`", ""), (
            f"{stack_file.name} holds an encryptionsalt: run any make target (it moves it to .pulumi/salts), "
            "or delete the line")


def test_an_unknown_stack_is_named(tmp_path):
    (tmp_path / "Pulumi.dev.yaml").write_text(CONFIG)
    with pytest.raises(StackFileError, match="no stack file Pulumi.qa.yaml: the stack must be one of dev"):
        with salted("qa", tmp_path):
            pass


SETTINGS = """config:
  dbcreds:target: docker
  dbcreds:vault_port: 18200
  dbcreds:transit_store_key: false
  dbcreds:roles:
    reader: {privileges: [SELECT], schemas: [public]}
  other:setting: x
"""


def test_the_settings_are_read_as_pulumi_stores_them(tmp_path):
    from toolchain.stack_file import project_settings, stored_config

    (tmp_path / "Pulumi.qa.yaml").write_text(SETTINGS)
    stored = stored_config("qa", tmp_path)
    assert stored["dbcreds:vault_port"] == "18200" and stored["dbcreds:transit_store_key"] == "false"
    assert stored["dbcreds:roles"] == '{"reader": {"privileges": ["SELECT"], "schemas": ["public"]}}'
    assert stored["other:setting"] == "x"
    assert project_settings("qa", tmp_path) == {k.removeprefix("dbcreds:"): v for k, v in stored.items()
                                                if k.startswith("dbcreds:")}


def test_a_setting_is_the_stack_files_or_its_default(tmp_path):
    from toolchain.stack_file import setting

    (tmp_path / "Pulumi.qa.yaml").write_text(SETTINGS)
    (tmp_path / "Pulumi.bare.yaml").write_text("config: {}\n")
    assert (setting("qa", "target", tmp_path), setting("bare", "target", tmp_path)) == ("docker", "local")
    assert setting("bare", "transit_store_key", tmp_path) == "false"
    with pytest.raises(StackFileError, match="no stack file Pulumi.nope.yaml: the stack must be one of bare, qa"):
        setting("nope", "target", tmp_path)


def test_the_repositorys_stacks():
    from toolchain.stack_file import setting, stacks_in_repository

    assert stacks_in_repository() == ["dev", "docker", "k8s", "prod", "staging"]
    assert {stack: setting(stack, "target") for stack in stacks_in_repository()} == {
        "dev": "local", "docker": "docker", "k8s": "kubernetes", "prod": "kubernetes", "staging": "local"}


def test_running_a_command_needs_only_the_standard_library():
    """make runs `python3 -m toolchain.stack_file STACK -- ...` with the machine's python3, maybe without yaml."""
    import ast
    import sys

    from toolchain.env import ROOT

    tree = ast.parse((ROOT / "toolchain" / "stack_file.py").read_text())
    top = {name.split(".")[0] for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
           for name in ([node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names])}
    assert top <= {*sys.stdlib_module_names, "toolchain"}
