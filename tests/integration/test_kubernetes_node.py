"""The kubernetes target's single-node profile for real: a cluster the test starts (kubelet, containerd,
the control plane; `tests.support.cluster`), the k8s stack file's program on it through the Automation
API.

Cluster up, stack up: the pods run the images built here, the stack initialises and unseals OpenBao
through 127.0.0.1 and the post-deploy checks pass; PostgreSQL's container killed: kubelet restarts it
on its volume; the Vault pod deleted: its StatefulSet brings it back on its volumes, sealed, and
`make up`'s path (the keepers, then an up with refresh) unseals it, the checks pass with the data
kept; `make down` (toolchain/down.py) revokes, finds no dynamic user, destroys, and no namespace,
pod, claim, volume or volume folder of the stack's is left; cluster down: no process, mount or cgroup
of the cluster's is left.
"""

import shutil
import time
import uuid

import pytest
from pulumi import automation as auto

from stacks import config as stack_settings
from stacks import kubernetes_target
from tests.automation import local_servers_config, make_down, root_program, stack_file_config, temporary_stack
from tests.support import cluster as test_cluster
from tests.support.dev_stack import DevStack, quiet
from tests.support.ports import free_ports
from tests.support.processes import processes_naming, remove_data_dir
from toolchain.env import ROOT
from toolchain.up import keepers, servers_down


def pod_uid(cluster: test_cluster.Cluster, namespace: str, name: str) -> str | None:
    response = cluster.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
    return response.json()["metadata"]["uid"] if response.status_code == 200 else None


def wait_for(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.5)


def pod_status(cluster: test_cluster.Cluster, namespace: str, name: str) -> dict:
    response = cluster.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
    return response.json().get("status", {}) if response.status_code == 200 else {}


def ready(status: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))


def test_single_node_stack_up_pod_restarts_and_down_leave_nothing(tmp_path, capfd):
    folder = ROOT / ".data" / "tests" / f"cluster-{uuid.uuid4().hex[:8]}"
    data_dir = ROOT / ".data" / "tests" / f"k8s-{uuid.uuid4().hex[:8]}"
    ports = dict(zip(test_cluster.DEFAULT_PORTS, free_ports(len(test_cluster.DEFAULT_PORTS))))
    try:
        cluster = test_cluster.up(folder, ports)
    except test_cluster.ClusterError as error:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"the single-node cluster cannot start here: {error}")
    files = tmp_path / "files"
    files.mkdir()
    namespace = f"dbcreds-test-{uuid.uuid4().hex[:6]}"
    try:
        with temporary_stack(root_program(tmp_path), tmp_path, "k8s") as stack:
            stack.set_all_config({
                **stack_file_config("k8s"),
                **local_servers_config(data_dir, keys=("vault_port", "vault_cluster_port", "db_port")),
                "dbcreds:k8s_kubeconfig": auto.ConfigValue(str(cluster.kubeconfig)),
                "dbcreds:k8s_namespace": auto.ConfigValue(namespace),
            })
            config = stack_settings.of_stack(stack, ROOT)
            running = DevStack(stack, {}, config, data_dir, files)
            running._read(stack.up(on_output=quiet).outputs)
            assert running.outputs["checks"]["passed"], running.outputs["checks"]
            assert running.outputs["target"] == "kubernetes"
            pods = {p["metadata"]["name"]: p for p in cluster.pods(namespace)}
            # Named after the components (two stacks' components could share a namespace).
            db_pod, vault_pod = running.outputs["db_pod"], running.outputs["vault_pod"]
            assert sorted(pods) == [db_pod, vault_pod] == ["db-0", "vault-0"]
            images = {c["image"] for p in pods.values() for c in p["spec"]["containers"]}
            assert images == set(test_cluster.images.image_names().values())
            assert all(p["spec"]["hostNetwork"] for p in pods.values())
            volumes = sorted(p.name for p in (data_dir / "volumes").iterdir())
            assert volumes == [f"{namespace}-{c}" for c in ("audit-vault-0", "data-db-0", "raft-vault-0")]

            # A row written with a dynamic credential survives the Vault pod's replacement.
            running.write_kept_row()

            # PostgreSQL's container killed: kubelet starts it again in the same pod, on its volume.
            status = pod_status(cluster, namespace, db_pod)
            container_id = status["containerStatuses"][0]["containerID"].removeprefix("containerd://")
            cluster.ctr("tasks", "kill", "--signal", "SIGKILL", container_id)
            wait_for(lambda: pod_status(cluster, namespace, db_pod)["containerStatuses"][0]["restartCount"] == 1
                     and ready(pod_status(cluster, namespace, db_pod)), "the database's pod restarted and ready")

            # The Vault pod deleted: the StatefulSet makes a new one on the same volumes, sealed.
            old = pod_uid(cluster, namespace, vault_pod)
            assert cluster.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{vault_pod}").status_code == 200
            wait_for(lambda: pod_uid(cluster, namespace, vault_pod) not in (None, old), "a new Vault pod")

            assert running.sealed_once_it_answers()
            # As make up does when a server does not answer: an up of the keepers (Vault unsealed with the
            # keys from state), then an up with refresh; the checks pass.
            assert servers_down(running.outputs) == [f"Vault at {running.outputs['vault_addr']} (down or sealed)"]
            keeper_urns = keepers(stack.export_stack().deployment["resources"])
            assert [urn.rsplit("::", 1)[1] for urn in keeper_urns] == ["vault-running"]
            stack.up(on_output=quiet, target=keeper_urns)
            assert not running.admin().sys.is_sealed()
            running._read(stack.up(on_output=quiet, refresh=True).outputs)
            assert running.outputs["checks"]["passed"], running.outputs["checks"]
            assert running.kept_rows() == 1

            err = make_down(stack, capfd)
            assert "no lease and no dynamic database user left" in err
            assert kubernetes_target.ours_left(config) == []
            assert cluster.pods(namespace) == []
            assert cluster.request("GET", f"/api/v1/namespaces/{namespace}").status_code == 404
    finally:
        test_cluster.down(folder)
        remove_data_dir(data_dir)
    assert processes_naming(folder) == []
    assert cluster.mounts() == [] and cluster.cgroups() == []
    assert not folder.exists() and not cluster.run_dir.exists()
