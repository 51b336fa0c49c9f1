"""The offline Pulumi environment that `make env` prints and the tests use."""

import stat

from toolchain.env import ROOT, pulumi_env


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
