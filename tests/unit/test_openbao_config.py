"""OpenBao's server config (components.servers.openbao.openbao_hcl), as every target writes it."""

from components.servers.openbao import openbao_hcl

ARGS = {"raft_path": "/d", "listen": "127.0.0.1:1", "cluster_listen": "127.0.0.1:2", "tls_dir": "/t",
        "audit_file": "/a/audit.log"}


def test_raft_runs_at_its_shortest_timeouts_for_one_node_as_for_a_cluster():
    """At raft's default timing a single node waits seconds to elect itself at every start, and the stack
    waits for it (a dev stack's OpenBao: 9.5 s to make at the default, 1.6 s at the shortest)."""
    single = openbao_hcl(**ARGS)
    cluster = openbao_hcl(**ARGS, peers=["https://127.0.0.1:3", "https://127.0.0.1:4"], node_id="openbao-0")
    for hcl in (single, cluster):
        raft = hcl[hcl.index('storage "raft" {'):hcl.index("\n}\n") + 1]
        assert "  performance_multiplier = 1\n" in raft, raft
    assert "retry_join" not in single and cluster.count("retry_join") == 2
