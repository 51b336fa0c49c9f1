"""The offline Pulumi environment that `make env` prints and the tests use."""

import stat

import pytest

from toolchain.env import CHECKOUT_STATE, ROOT, PassphraseError, pulumi_env


def test_env_points_at_the_built_tools_and_local_state(tmp_path):
    env = pulumi_env(tmp_path)
    assert env["PATH"].split(":")[:2] == [str(ROOT / ".tools" / "bin"), str(ROOT / ".venv" / "bin")]
    assert env["PULUMI_BACKEND_URL"] == (tmp_path / "state").as_uri()
    assert env["PULUMI_SKIP_UPDATE_CHECK"] == "true"
    assert env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] == "true"


def test_passphrase_is_random_private_and_stable(tmp_path):
    first = pulumi_env(tmp_path / "a")["PULUMI_CONFIG_PASSPHRASE_FILE"]
    again = pulumi_env(tmp_path / "a")["PULUMI_CONFIG_PASSPHRASE_FILE"]
    other = pulumi_env(tmp_path / "b")["PULUMI_CONFIG_PASSPHRASE_FILE"]
    text = open(first).read()
    assert open(again).read() == text and len(text) >= 32
    assert open(other).read() != text
    assert stat.S_IMODE((tmp_path / "a" / "passphrase").stat().st_mode) == 0o600


def test_a_team_passphrase_file_in_the_environment_is_the_checkouts(tmp_path):
    team = tmp_path / "team-passphrase"
    team.write_text("shared by the team\n")
    env = pulumi_env(CHECKOUT_STATE, {"PULUMI_CONFIG_PASSPHRASE_FILE": str(team), "PATH": "/usr/bin"})
    assert env["PULUMI_CONFIG_PASSPHRASE_FILE"] == str(team)
    # A test's own state never takes it: its stacks are its own.
    mine = pulumi_env(tmp_path / "test", {"PULUMI_CONFIG_PASSPHRASE_FILE": str(team)})
    assert mine["PULUMI_CONFIG_PASSPHRASE_FILE"] == str(tmp_path / "test" / "passphrase")


@pytest.mark.parametrize("content, message", [(None, "cannot be read"), ("  \n", "the file is empty")])
def test_a_team_passphrase_file_that_cannot_be_used_is_named(tmp_path, content, message):
    team = tmp_path / "team-passphrase"
    if content is not None:
        team.write_text(content)
    with pytest.raises(PassphraseError, match=f"PULUMI_CONFIG_PASSPHRASE_FILE={team}: {message}"):
        pulumi_env(CHECKOUT_STATE, {"PULUMI_CONFIG_PASSPHRASE_FILE": str(team)})
