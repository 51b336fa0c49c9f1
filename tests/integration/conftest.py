"""Fixtures the integration tests share.

`cluster`: one real 3-node Kubernetes cluster (toolchain/cluster/, docs/cluster.md) for the whole
session, started when the first test asks for it and stopped (everything of it removed) at the end.
Tests that stop, drain or cordon a node put it back as they found it; each test works in namespaces
of its own and deletes them.

`platform`: the root program up on a dev stack with dev's config (tests/support/dev_stack.py), shared by
the modules that need only a platform that is up and leave it as they found it (tests/conftest.py's
SHARED runs them in one worker): one `up` and one destroy for all of them instead of one each.
"""

import uuid
from pathlib import Path

import pytest

from tests.support.dev_stack import dev_stack
from toolchain.cluster import cluster as cluster_support
from toolchain.cluster import net as cluster_net
from toolchain.env import ROOT

SESSION_NODES = 3


@pytest.fixture(scope="session")
def cluster():
    folder = ROOT / ".data" / "tests" / f"cluster-{uuid.uuid4().hex[:8]}"
    machine = {key: Path("/proc/sys", key).read_text() for key in cluster_net.KUBELET_SYSCTLS}
    absent = [folder for folder in cluster_net.MACHINE_FOLDERS if not Path(folder).exists()]
    started = cluster_support.up(folder, SESSION_NODES)
    slot = started.layout.slot
    try:
        yield started
    finally:
        cluster_support.down(folder)
    left = {what: found for what, found in started.leftovers(slot).items() if found}
    assert not left, f"the session's cluster left {left}"
    if not cluster_net.entries():
        # With no cluster left, the kernel settings every kubelet changes are the machine's again ...
        assert {key: Path("/proc/sys", key).read_text() for key in cluster_net.KUBELET_SYSCTLS} == machine
        # ... and the machine's fixed folders that kubelet and containerd use are gone if they were.
        assert [folder for folder in absent if Path(folder).exists()] == []


@pytest.fixture(scope="session")
def platform(tmp_path_factory):
    with dev_stack(tmp_path_factory.mktemp("platform"), "platform") as running:
        yield running
