"""OpenBao as a cluster of 3 raft nodes on the local target, through `__main__.py`, for real.

One stack (the dev stack's config with `vault_nodes: 3`, the static seal, its own ports) serves the
module, whose tests run in order and each leave the cluster whole: up (3 voters, one active, the
checks through each node); the active node killed (`kill -9`) while 20 workers issue, renew and revoke
(issuance resumes, every lease taken before can be renewed and revoked, the next `up` starts the node
again and it rejoins as a follower that unsealed itself); two nodes hung (SIGSTOP: running, not
answering, which `up` cannot fix): issuance stops and `up` fails naming the lost quorum, one node
back and service resumes with nothing lost; a node's raft folder deleted: the next `up` brings it back
as a new voter; `make down` revokes every lease, finds no dynamic user and stops every node.
"""

import os
import shutil
import signal
import time

import hvac
import pytest
import requests
from pulumi import automation as auto

from components.servers.openbao import node_state
from components.vault.checks import renew, revoke
from stacks import local_target as local
from tests.automation import make_down
from tests.support.dev_stack import DevStack, dev_stack, quiet
from tests.support.ports import free_port_run
from tests.support.vault_load import ClusterLoad, recovery
from tests.support.waiting import wait_for

NODES = 3


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The dev stack's config as a 3-node cluster: node i on vault_port + i, its cluster listener on
    vault_cluster_port + i."""
    with dev_stack(tmp_path_factory.mktemp("cluster"), "ha", vault_nodes=str(NODES),
                   vault_port=str(free_port_run(NODES)), vault_cluster_port=str(free_port_run(NODES)),
                   vault_key_shares="3", vault_key_threshold="2") as running:
        yield running


def nodes(running: DevStack):
    return local.vault_nodes(running.config)


def states(running: DevStack) -> dict[str, str]:
    return {node.address: node_state(node.client(timeout=3)) for node in nodes(running)}


def active_node(running: DevStack):
    return wait_for(lambda: next((n for n in nodes(running) if node_state(n.client(timeout=3)) == "active"), None),
                    "an active node")


def raft_peers(running: DevStack) -> list[dict]:
    return running.admin().adapter.get("/v1/sys/storage/raft/configuration")["data"]["config"]["servers"]


def load_on(running: DevStack, client: str = "app") -> ClusterLoad:
    access = running.outputs["clients"][client]
    return ClusterLoad(running.outputs["vault_addrs"], running.ca_file("vault_ca_pem"), access,
                       access["creds_path"], workers=20)


def test_up_makes_three_voters_one_active_and_the_checks_pass_through_each_node(cluster):
    report = cluster.outputs["checks"]
    assert report["passed"], report
    assert len(cluster.outputs["vault_addrs"]) == NODES and cluster.outputs["vault_addr"] == cluster.outputs["vault_addrs"][0]
    assert cluster.secret["vault_recovery_keys"] and len(cluster.outputs["vault_recovery_keys"]) == 3
    states_now = [n["state"] for n in report["vault_cluster"]["nodes"]]
    assert sorted(states_now) == ["active", "standby", "standby"]
    peers = report["vault_cluster"]["raft_peers"]
    assert len(peers) == NODES and all(p["voter"] for p in peers) and sum(p["leader"] for p in peers) == 1
    through = [c["name"] for c in report["checks"] if " through node " in c["name"]]
    assert len(through) == NODES
    # Each node reads the seal key from a file only its owner may read; none was typed anywhere.
    for node in nodes(cluster):
        (key,) = (node.data_dir / "seal").iterdir()
        assert key.stat().st_mode & 0o777 == 0o600
    cluster.write_kept_row()


def test_the_active_node_killed_under_load_loses_no_lease(cluster, figure):
    load = load_on(cluster)
    load.start()
    try:
        time.sleep(6)
        victim = active_node(cluster)
        killed_at = time.monotonic()
        os.kill(victim.pid(), signal.SIGKILL)
        wait_for(lambda: recovery(load.events, killed_at).steady is not None, "a steady rate after the kill", 90)
        time.sleep(1)
    finally:
        load.stop()
    figures = recovery(load.events, killed_at)
    figure(f"failover: {figures}")
    assert figures.first_success is not None and figures.steady is not None
    # Every lease taken before the kill is renewed and revoked through a node that serves, and its user
    # can no longer log in.
    vault = cluster.login("app")
    for held in load.held:
        assert renew(vault, held.lease_id, 60)["lease_duration"] > 0
        revoke(vault, held.lease_id)
        with pytest.raises(Exception, match="password authentication failed"):
            cluster.connect(held.username, held.password).close()
    # The killed node is started again by the next up (its keeper), unseals itself and rejoins as a follower.
    assert victim.pid() is None
    cluster.up()
    assert cluster.outputs["checks"]["passed"], cluster.outputs["checks"]
    assert node_state(victim.client()) == "standby"
    assert len(raft_peers(cluster)) == NODES
    assert cluster.kept_rows() == 1


def test_two_nodes_hung_stop_issuance_and_up_names_the_lost_quorum(cluster):
    victims = [active_node(cluster)] + [n for n in nodes(cluster) if node_state(n.client()) == "standby"][:1]
    survivor = next(n for n in nodes(cluster) if n not in victims)
    for victim in victims:
        os.kill(victim.pid(), signal.SIGSTOP)
    try:
        # Through the one node left, a client can no longer log in (no active node to forward to).
        access = cluster.outputs["clients"]["app"]
        with pytest.raises((hvac.exceptions.VaultError, requests.exceptions.RequestException)):
            survivor.client(timeout=5).auth.approle.login(role_id=access["role_id"], secret_id=access["secret_id"],
                                                          mount_point=access["approle_mount"])
        with pytest.raises(auto.CommandError, match="lost its quorum: 3 nodes need 2 voters") as up:
            cluster.up()
        assert all(v.address in str(up.value) for v in victims)
        # One node back: the two elect a leader and serve, with nothing lost.
        os.kill(victims[1].pid(), signal.SIGCONT)
        wait_for(lambda: "active" in states(cluster).values(), "an active node after one came back")
        assert cluster.kept_rows() == 1
    finally:
        for victim in victims:
            if victim.pid():
                os.kill(victim.pid(), signal.SIGCONT)
    cluster.up()
    assert cluster.outputs["checks"]["passed"], cluster.outputs["checks"]


def test_a_node_whose_raft_folder_was_lost_comes_back_as_a_new_voter(cluster):
    victim = next(n for n in nodes(cluster) if node_state(n.client()) == "standby")
    old_id = (victim.data_dir / "raft" / "node-id").read_text()
    os.kill(victim.pid(), signal.SIGKILL)
    wait_for(lambda: victim.pid() is None, "the node gone")
    shutil.rmtree(victim.data_dir / "raft")
    cluster.up()
    assert cluster.outputs["checks"]["passed"], cluster.outputs["checks"]
    new_id = (victim.data_dir / "raft" / "node-id").read_text()
    assert new_id != old_id
    peers = wait_for(lambda: (p := raft_peers(cluster)) and all(s["voter"] for s in p) and len(p) == NODES and p,
                     "three voters")
    assert new_id in {p["node_id"] for p in peers} and old_id not in {p["node_id"] for p in peers}
    assert cluster.kept_rows() == 1


def test_make_down_revokes_every_lease_and_stops_every_node(cluster, capfd):
    err = make_down(cluster.stack, capfd)
    assert "no lease and no dynamic database user left" in err
    assert local.running_servers(cluster.config) == []
    assert not any(node.data_dir.exists() for node in nodes(cluster))
