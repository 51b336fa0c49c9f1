"""`make clean` refuses while a stack still has resources: the state holds its only Vault keys."""

import json

from toolchain.clean import deployed_stacks, passphrase_goes_with_state


def checkpoint(state, project: str, stack: str, resources: list) -> None:
    path = state / ".pulumi" / "stacks" / project / f"{stack}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 3, "checkpoint": {"stack": stack, "latest": {"resources": resources}}}))


def test_only_stacks_with_resources_are_named(tmp_path):
    checkpoint(tmp_path, "dbcreds", "dev", [{"urn": "a"}, {"urn": "b"}])
    checkpoint(tmp_path, "dbcreds", "staging", [])
    (tmp_path / ".pulumi" / "stacks" / "dbcreds" / "prod.json.bak").write_text("{}")
    assert deployed_stacks(tmp_path) == ["dbcreds/dev (2 resources)"]


def test_no_state_is_nothing_deployed(tmp_path):
    assert deployed_stacks(tmp_path / "absent") == []


def test_clean_says_the_passphrase_goes_unless_it_is_the_teams(tmp_path):
    team = tmp_path / "team-passphrase"
    team.write_text("shared")
    assert passphrase_goes_with_state({})
    assert not passphrase_goes_with_state({"PULUMI_CONFIG_PASSPHRASE_FILE": str(team)})
