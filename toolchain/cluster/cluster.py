"""A real multi-node Kubernetes cluster with a pod network, in network namespaces the project makes.

The control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, all built from
k8s.io/kubernetes by `bash toolchain/bootstrap.sh cluster`) runs in a namespace of its own; each node
in its own, with its own containerd (Debian's, with runc), kubelet and kube-proxy; a bridge in a
namespace of its own joins them (net.py). Pods get addresses from their node's pod CIDR (the CNI
plugins bridge, host-local, loopback, portmap), Services work through kube-proxy (iptables mode),
CoreDNS answers for cluster.local and local-path-provisioner makes volumes (addons.py). The machine
reaches the API server, the pods and the Services through one link into the cluster's switch;
docs/cluster.md draws it all.

Everything of a cluster lives in one folder, its slot's namespaces and `/run/dbc<S>`; each process is
started detached with its PID recorded in the folder, so that `make cluster-up` can return and `make
cluster-down` (or a test) stop them later, by PID, and remove what kubelet and containerd leave
(mounts, cgroups, runtime folders, log links) and the namespaces, links and routes.

    python -m toolchain.cluster.cluster up [FOLDER] [--nodes N]   start (default .data/cluster, 3 nodes);
                                                                  the last line printed is the kubeconfig
    python -m toolchain.cluster.cluster down [FOLDER]             stop everything and remove the folder
"""

import argparse
import concurrent.futures
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import requests

from components.servers.process import running_pid, start_detached
from toolchain.cluster import addons as cluster_addons
from toolchain.cluster import images as cluster_images
from toolchain.cluster import net as cluster_net
from toolchain.cluster import pki as cluster_pki
from toolchain.cluster.net import DEFAULT_NODES, Layout, NetworkError, nsenter
from toolchain.env import ROOT, toolchain_version

DEFAULT_FOLDER = ROOT / ".data" / "cluster"
BIN = ROOT / ".tools" / "bin"
KUBERNETES_VERSION = toolchain_version("KUBERNETES_VERSION")
#: containerd's namespace for Kubernetes' images and containers.
K8S_NAMESPACE = "k8s.io"
CLUSTER_DOMAIN = "cluster.local"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
#: The control plane's processes, started in this order (stopped in the reverse one).
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")
#: Each node's processes, started in this order.
NODE_PROCESSES = ("containerd", "kubelet", "kube-proxy")
#: How fast a lost node is noticed and its pods moved (the defaults are 40 s, 50 s and 300 s): kubelet
#: renews its lease every LEASE_SECONDS / 4; after GRACE without one the node is NotReady (Unknown)
#: and tainted; pods tolerate the taint TOLERATION_SECONDS, then they are evicted.
LEASE_SECONDS = 10
NODE_MONITOR_GRACE = "15s"
NODE_MONITOR_PERIOD = "2s"
TOLERATION_SECONDS = 10
STARTUP_SECONDS = 120
#: What a cluster's folder holds.
FOLDER_ENTRIES = ("cluster.json", "kubeconfig", "pids", "logs", "pki", "control-plane", "nodes")


#: Requests to the cluster never go through a proxy the environment may name.
_HTTP = requests.Session()
_HTTP.trust_env = False


class ClusterError(RuntimeError):
    pass


class ClusterRunning(ClusterError):
    """A cluster already runs (or is being started) in that folder."""


@dataclass(frozen=True)
class Node:
    name: str
    index: int
    #: Its address on the cluster's switch (kubelet's node IP, the InternalIP).
    address: str
    pod_cidr: str
    #: Its network namespace (/run/netns/<namespace>).
    namespace: str


def _kill(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _mount_points() -> list[str]:
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]


def _unmount_under(*folders: Path) -> None:
    prefixes = tuple(f"{folder}/" for folder in folders)
    for _ in range(3):
        points = sorted({p for p in _mount_points() if p.startswith(prefixes)}, key=len, reverse=True)
        if not points:
            return
        for point in points:
            subprocess.run(["umount", "-l", point], capture_output=True)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(text)
    path.chmod(mode)


@dataclass(frozen=True)
class Cluster:
    """One cluster's folder, and what is known of it from there (cluster.json)."""

    folder: Path

    # What the cluster is.

    def settings(self) -> dict:
        return json.loads((self.folder / "cluster.json").read_text())

    @property
    def layout(self) -> Layout:
        settings = self.settings()
        return Layout(settings["slot"], settings["nodes"])

    @property
    def kubeconfig(self) -> Path:
        return self.folder / "kubeconfig"

    @property
    def url(self) -> str:
        """The API server's URL, from the machine (and from every node)."""
        return self.settings()["url"]

    @property
    def token(self) -> str:
        """The admin's bearer token (system:masters)."""
        return self.settings()["token"]

    @property
    def ca_file(self) -> Path:
        """The cluster's CA: it signed the API server's certificate (and is every pod's kube-root-ca.crt)."""
        return Path(self.settings()["ca_file"])

    @property
    def nodes(self) -> list[Node]:
        layout = self.layout
        return [Node(f"node-{i}", i, layout.node_address(i), layout.pod_cidr(i), layout.node_ns(i))
                for i in range(1, layout.nodes + 1)]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise ClusterError(f"no node {name!r} in the cluster in {self.folder}: {[n.name for n in self.nodes]}")

    # Where its parts live.

    def node_dir(self, node: Node) -> Path:
        return self.folder / "nodes" / node.name

    def node_run_dir(self, node: Node) -> Path:
        return self.layout.run_dir / f"n{node.index}"

    def containerd_socket(self, node: Node) -> Path:
        return self.node_run_dir(node) / "containerd.sock"

    def node_cgroup(self, node: Node) -> str:
        return f"{self.layout.cgroup}/{node.name}"

    def _pid_file(self, name: str) -> Path:
        return self.folder / "pids" / f"{name}.pid"

    def _log(self, name: str) -> Path:
        return self.folder / "logs" / f"{name}.log"

    def process_names(self) -> list[str]:
        return [*CONTROL_PLANE, *(f"{node.name}.{p}" for node in self.nodes for p in NODE_PROCESSES)]

    def pids(self) -> dict[str, int]:
        """The processes of this cluster that run, by name (node processes as `<node>.<process>`)."""
        names = [p.name.removesuffix(".pid") for p in (self.folder / "pids").glob("*.pid")]
        found = {name: running_pid(self._pid_file(name), str(self.folder)) for name in names}
        return {name: pid for name, pid in found.items() if pid is not None}

    # Talking to it.

    def request(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs) -> requests.Response:
        """A request to the API server as its admin."""
        settings = self.settings()
        return _HTTP.request(method, settings["url"] + path,
                                headers={"Authorization": f"Bearer {settings['token']}", **(headers or {})},
                                verify=settings["ca_file"], timeout=kwargs.pop("timeout", 30), **kwargs)

    def apply(self, obj: dict) -> dict:
        """Server-side apply of one object (of the kinds cluster_addons knows)."""
        response = self.request("PATCH", f"{cluster_addons.object_path(obj)}?fieldManager="
                                         f"{cluster_addons.FIELD_MANAGER}&force=true",
                                headers={"Content-Type": "application/apply-patch+yaml"}, data=json.dumps(obj))
        if response.status_code not in (200, 201):
            raise ClusterError(f"applying {obj['kind']} {obj['metadata']['name']}: {response.status_code} "
                               f"{response.text[:500]}")
        return response.json()

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess:
        """kubectl (built by the bootstrap) against this cluster, as its admin."""
        result = subprocess.run([str(BIN / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args], input=input,
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}")
        return result

    def ctr(self, node: Node | str, *args: str, stdin: Path | None = None) -> str:
        """containerd's own CLI on a node, in Kubernetes' namespace."""
        node = self.node(node) if isinstance(node, str) else node
        with open(stdin or os.devnull, "rb") as feed:
            result = subprocess.run(["ctr", "--address", str(self.containerd_socket(node)), "--namespace",
                                     K8S_NAMESPACE, *args], stdin=feed, capture_output=True, text=True)
        if result.returncode != 0:
            raise ClusterError(f"ctr {' '.join(args)} on {node.name} failed: {result.stderr.strip()}")
        return result.stdout

    def in_node(self, node: Node | str, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        """Runs a program in a node's network namespace (as a process on that node's host would)."""
        node = self.node(node) if isinstance(node, str) else node
        return subprocess.run([*nsenter(node.namespace), *argv], capture_output=True, text=True, **kwargs)

    def pods(self, namespace: str) -> list[dict]:
        response = self.request("GET", f"/api/v1/namespaces/{namespace}/pods")
        return response.json().get("items", []) if response.status_code == 200 else []

    def node_ready(self, name: str) -> bool:
        response = self.request("GET", f"/api/v1/nodes/{name}")
        if response.status_code != 200:
            return False
        conditions = response.json().get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def healthy(self) -> bool:
        """Every process runs and the API server is ready."""
        try:
            return set(self.pids()) >= set(self.process_names()) and \
                self.request("GET", "/readyz", timeout=5).status_code == 200
        except (requests.RequestException, OSError, ValueError, KeyError):
            return False

    # Nodes stopped and started again.

    def stop_node(self, name: str) -> None:
        """Stops a node as a crash would: its kubelet, kube-proxy and containerd killed, every container of
        its pods killed, what they had mounted unmounted, its runtime state (a machine's /run) gone, and
        its cable pulled from the switch. Its disks (images, kubelet's folder, volumes) stay, and so
        does its Node object: the control plane notices it NotReady after NODE_MONITOR_GRACE."""
        node = self.node(name)
        cluster_net.set_node_plugged(self.layout, node.index, False)
        _stop_node_processes(self, node)

    def start_node(self, name: str, wait: bool = True) -> None:
        """Starts a stopped node again (its cable plugged back in); waits until it is Ready."""
        node = self.node(name)
        cluster_net.set_node_plugged(self.layout, node.index, True)
        _start_node_runtime(self, node)
        _start_node_agents(self, node)
        if wait:
            _wait(lambda: self.node_ready(node.name), f"node {node.name} Ready", self, f"{node.name}.kubelet")

    # What is left of it on this machine (for clean-up checks).

    def leftovers(self, slot: int | None = None) -> dict[str, list]:
        """Everything of this cluster still on the machine: processes, namespaces, links, routes, mounts,
        cgroups, folders, the slot's registry entry, log links and CNI results; all empty once `down`
        has run. The slot is read from the folder unless given (after `down` there is no folder)."""
        slot = self.layout.slot if slot is None else slot
        layout = Layout(slot, 1)
        return {
            "processes": _processes_of(self.folder, layout),
            "namespaces": cluster_net.slot_namespaces(slot),
            "links": cluster_net.slot_links(slot),
            "routes": cluster_net.slot_routes(slot),
            "mounts": [p for p in _mount_points() if p.startswith((f"{self.folder}/", f"{layout.run_dir}/"))],
            "cgroups": [str(p) for p in cluster_net.slot_cgroups(slot)],
            "folders": [str(p) for p in (self.folder, layout.run_dir) if p.exists()],
            "registry": [str(cluster_net.REGISTRY / f"slot-{slot}.json")]
            if cluster_net.read_entry(slot) and cluster_net.read_entry(slot)["folder"] == str(self.folder) else [],
            "log links": _log_links(self.folder),
            "cni results": [str(p) for p in _cni_results(slot)],
        }


# Processes.

def _start(cluster: Cluster, name: str, argv: list[str], namespace: str, ready: Callable[[], object] = lambda: None,
           ) -> None:
    """Starts one process detached in a network namespace, its PID recorded; its command line names the
    folder (how it is found again). Waits until ready() stops raising."""
    start_detached([*nsenter(namespace), *argv], cluster._pid_file(name), cluster._log(name), ready,
                   f"{name} of the cluster in {cluster.folder}", ClusterError)


def _wait(ready: Callable[[], bool], what: str, cluster: Cluster, log: str, seconds: float = STARTUP_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if ready():
                return
        except (requests.RequestException, OSError, ValueError, KeyError, ClusterError):
            pass
        if time.monotonic() > deadline:
            path = cluster._log(log)
            tail = path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"
            raise ClusterError(f"{what}: not within {seconds:.0f}s; {path.name} ends:\n{tail}")
        time.sleep(0.25)


def _kill_by_pid_file(cluster: Cluster, name: str, sig: int = signal.SIGKILL, wait: float = 10) -> None:
    pid_file = cluster._pid_file(name)
    pid = running_pid(pid_file, str(cluster.folder))
    if pid is not None:
        _kill(pid, sig)
        deadline = time.monotonic() + wait
        while running_pid(pid_file, str(cluster.folder)) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if running_pid(pid_file, str(cluster.folder)) is not None:
            _kill(pid, signal.SIGKILL)
            while running_pid(pid_file, str(cluster.folder)) is not None:
                time.sleep(0.05)
    pid_file.unlink(missing_ok=True)


def _processes_of(folder: Path, layout: Layout) -> list[str]:
    """Live processes whose command line names the folder or the slot's runtime folder, or that sit in
    the slot's cgroups (the pods' processes)."""
    found = []
    marks = (str(folder).encode(), f"{layout.run_dir}/".encode())
    cgroup_mark = f":{layout.cgroup}/".encode()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if not cmdline or not cluster_net.pid_alive(int(proc.name)):
                continue
            if any(m in cmdline for m in marks) or cgroup_mark in (proc / "cgroup").read_bytes():
                command = cmdline.replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{proc.name}: {command[:200]}")
        except OSError:
            continue
    return found


def _kill_cgroup(group: Path) -> None:
    """Kills every process in a cgroup folder and below it, until none is left (10 s at most)."""
    deadline = time.monotonic() + 10
    while (pids := cluster_net.cgroup_pids(group)) and time.monotonic() < deadline:
        for pid in pids:
            _kill(pid)
        time.sleep(0.05)


def _kill_shims(socket_path: Path) -> None:
    """containerd's shims outlive containerd: end the ones of a node's containerd."""
    mark = str(socket_path).encode()
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes()
            if b"containerd-shim" in cmdline and mark in cmdline:
                _kill(int(proc.name))


def _remove_shim_sockets(state: Path) -> None:
    """The sockets a node's shims left in /run/containerd/s (each task's bundle names its shim's)."""
    for address in state.glob("io.containerd.runtime.v2.task/*/*/address"):
        with contextlib.suppress(OSError):
            path = Path(address.read_text().strip().removeprefix("unix://"))
            if path.parent == Path("/run/containerd/s"):
                path.unlink(missing_ok=True)


def _log_links(folder: Path) -> list[str]:
    """kubelet's links in /var/log/containers (a fixed folder) to the logs of this cluster's pods."""
    found = []
    logs = Path("/var/log/containers")
    if logs.is_dir():
        for link in logs.iterdir():
            with contextlib.suppress(OSError):
                if link.is_symlink() and os.readlink(link).startswith(f"{folder}/"):
                    found.append(str(link))
    return found


def _cni_results(slot: int, node: str = "") -> list[Path]:
    """What the CNI library caches in /var/lib/cni/results for this cluster's pods (of one node, if
    named): `<network>-<sandbox>-eth0`, and containerd's `cni-loopback-<sandbox>-lo`."""
    results = Path("/var/lib/cni/results")
    if not results.is_dir():
        return []
    ours = sorted(results.glob(f"dbc{slot}-{node}*"))
    sandboxes = {p.name.rsplit("-", 2)[1] for p in ours}
    return ours + sorted(p for p in results.glob("cni-loopback-*") if p.name.rsplit("-", 2)[1] in sandboxes)


def _stop_node_processes(cluster: Cluster, node: Node) -> None:
    """Kills a node's processes and pods, and removes its runtime state and what they mounted."""
    for process in ("kubelet", "kube-proxy", "containerd"):
        _kill_by_pid_file(cluster, f"{node.name}.{process}")
    run_dir = cluster.node_run_dir(node)
    _kill_shims(cluster.containerd_socket(node))
    for group in cluster_net.CGROUP_ROOT.glob(f"*{cluster.node_cgroup(node)}"):
        _kill_cgroup(group)
    _unmount_under(cluster.node_dir(node), run_dir)
    _remove_shim_sockets(run_dir / "state")
    shutil.rmtree(run_dir, ignore_errors=True)
    for group in cluster_net.CGROUP_ROOT.glob(f"*{cluster.node_cgroup(node)}"):
        cluster_net.remove_cgroup_tree(group, keep_top=True)
    for result in _cni_results(cluster.layout.slot, f"{node.name}-"):
        result.unlink(missing_ok=True)


# Configuration files.

def _containerd_config(cluster: Cluster, node: Node, pause_image: str) -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    root, run = cluster.node_dir(node) / "containerd", cluster.node_run_dir(node)
    return f"""version = 2
root = "{root}"
state = "{run / 'state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{cluster.containerd_socket(node)}"

[ttrpc]
  address = "{cluster.containerd_socket(node)}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{root / 'opt'}"

[{cri}]
  sandbox_image = "{pause_image}"
  # Root here lacks CAP_SYS_RESOURCE: runc may not lower oom_score_adj below its own.
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # The pods' network namespaces under this node's runtime folder, not the machine's /run/netns.
  netns_mounts_under_state_dir = true

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "{run / 'runc'}"

[{cri}.cni]
  bin_dir = "{cni_bin_dir()}"
  conf_dir = "{cluster.node_dir(node) / 'cni'}"
  max_conf_num = 1
"""


def cni_bin_dir() -> Path:
    return cluster_images.toolchain_cache() / "cni-plugins" / f"v{toolchain_version('CNI_PLUGINS_VERSION')}"


def _cni_config(cluster: Cluster, node: Node) -> str:
    gateway = node.pod_cidr.rsplit(".", 1)[0] + ".1"
    return json.dumps({
        "cniVersion": "1.0.0", "name": f"dbc{cluster.layout.slot}-{node.name}",
        "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False,
             # A pod reaching its own Service comes back out of the port it went in by.
             "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": node.pod_cidr, "gateway": gateway}]],
                      "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(cluster.node_run_dir(node) / "ipam")}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ]}, indent=2)


def _kubelet_config(cluster: Cluster, node: Node) -> str:
    layout, pki = cluster.layout, cluster.folder / "pki"
    return f"""apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {node.address}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
containerRuntimeEndpoint: unix://{cluster.containerd_socket(node)}
cgroupDriver: cgroupfs
cgroupRoot: {cluster.node_cgroup(node)}
failSwapOn: false
failCgroupV1: false
clusterDNS: [{layout.dns_service_ip}]
clusterDomain: {CLUSTER_DOMAIN}
# Pods with dnsPolicy Default get no name server: nothing outside the cluster may be asked.
resolvConf: ""
podLogsDir: {cluster.node_dir(node) / 'pod-logs'}
volumePluginDir: {cluster.node_dir(node) / 'volume-plugins'}
nodeLeaseDurationSeconds: {LEASE_SECONDS}
nodeStatusUpdateFrequency: 2s
# The API server (its client certificate) and holders of a token the API server accepts and
# authorizes (TokenReview, SubjectAccessReview) may use kubelet's API.
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: "{pki / 'ca.crt'}"}}
authorization:
  mode: Webhook
# A nearly full disk must not evict pods, nor collect the imported images (nothing can be pulled).
evictionHard: {{memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}}
imageGCHighThresholdPercent: 100
"""


def _kube_proxy_config(cluster: Cluster, name: str, address: str, kubeconfig: Path) -> str:
    return f"""apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: {kubeconfig}
hostnameOverride: {name}
bindAddress: {address}
healthzBindAddress: {address}:10256
metricsBindAddress: 127.0.0.1:10249
mode: iptables
# NodePorts on the node's own address only.
nodePortAddresses: [primary]
# Traffic to a Service from outside the pods' range (the machine, a node) is masqueraded.
clusterCIDR: {cluster.layout.cluster_cidr}
detectLocalMode: ClusterCIDR
iptables:
  masqueradeAll: false
  localhostNodePorts: false
  syncPeriod: 30s
  minSyncPeriod: 1s
# The conntrack table's size is the machine's (one for every namespace): left as it is.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
oomScoreAdj: 0
"""


def _prepare_node(cluster: Cluster, node: Node, tokens: dict[str, str], pause_image: str) -> None:
    node_dir = cluster.node_dir(node)
    for sub in ("containerd", "kubelet", "pod-logs", "volumes", "volume-plugins"):
        (node_dir / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    (node_dir / "volumes").chmod(0o755)
    _write(node_dir / "containerd.toml", _containerd_config(cluster, node, pause_image))
    _write(node_dir / "cni" / "10-dbcreds.conflist", _cni_config(cluster, node))
    _write(node_dir / "kubelet.yaml", _kubelet_config(cluster, node))
    ca = cluster.folder / "pki" / "ca.crt"
    url = cluster.layout.api_url
    cluster_pki.write_kubeconfig(node_dir / "kubeconfig", url, ca, tokens[f"node:{node.name}"], f"system:node:{node.name}")
    cluster_pki.write_kubeconfig(node_dir / "kube-proxy.kubeconfig", url, ca, tokens["kube-proxy"], "system:kube-proxy")
    _write(node_dir / "kube-proxy.yaml",
           _kube_proxy_config(cluster, node.name, node.address, node_dir / "kube-proxy.kubeconfig"))


# The cluster as a whole.

def _tcp_answers(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def _deployment_available(cluster: Cluster, namespace: str, name: str) -> bool:
    response = cluster.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
    status = response.json().get("status", {}) if response.status_code == 200 else {}
    return status.get("availableReplicas", 0) >= response.json()["spec"]["replicas"] and \
        status.get("updatedReplicas", 0) >= response.json()["spec"]["replicas"]


def _sweep(folder: Path) -> None:
    """Removes what killed runs left in slots no live cluster holds (the registry lock held)."""
    for slot in sorted(cluster_net.used_slots()):
        entry = cluster_net.read_entry(slot)
        if entry is not None and _slot_alive(entry):
            continue
        _remove_slot(slot, Path(entry["folder"]) if entry else None)


def _slot_alive(entry: dict) -> bool:
    """Whether the cluster a registry entry names lives: its `up` still runs, or any of its processes."""
    if cluster_net.pid_alive(entry.get("owner", 0)) and entry.get("owner") != os.getpid():
        return True
    return bool(Cluster(Path(entry["folder"])).pids()) if (Path(entry["folder"]) / "pids").is_dir() else False


def _remove_slot(slot: int, folder: Path | None) -> None:
    """Everything of a slot on the machine but its folder: pods' processes, mounts, shim sockets,
    runtime folder, cgroups, CNI results, namespaces, the machine's link and routes, registry entry."""
    layout = Layout(slot, 1)
    for group in cluster_net.slot_cgroups(slot):
        _kill_cgroup(group)
    if layout.run_dir.is_dir():
        for sock in layout.run_dir.glob("n*/containerd.sock"):
            _kill_shims(sock)
    _unmount_under(*([folder] if folder else []), layout.run_dir)
    for state in layout.run_dir.glob("n*/state"):
        _remove_shim_sockets(state)
    shutil.rmtree(layout.run_dir, ignore_errors=True)
    for group in cluster_net.slot_cgroups(slot):
        cluster_net.remove_cgroup_tree(group)
    for result in _cni_results(slot):
        result.unlink(missing_ok=True)
    if folder is not None:
        for link in _log_links(folder):
            Path(link).unlink(missing_ok=True)
    cluster_net.destroy(slot)
    cluster_net.release(slot)


def up(folder: Path = DEFAULT_FOLDER, nodes: int = DEFAULT_NODES, timings: dict[str, float] | None = None) -> Cluster:
    """Starts a cluster of `nodes` nodes in folder and returns it once every node is Ready, DNS and the
    storage provisioner run, and the machine reaches the Services. Raises ClusterRunning (changing
    nothing) when one already runs there. `timings`, if given, gets each phase's seconds."""
    nodes = cluster_net.node_count(nodes)
    timings = {} if timings is None else timings
    clock = start = time.monotonic()

    def phase(name: str) -> None:
        nonlocal clock
        timings[name] = time.monotonic() - clock
        clock = time.monotonic()

    folder = folder.resolve()
    cluster = Cluster(folder)
    missing = [name for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet",
                                 "kube-proxy", "kubectl") if not (BIN / name).exists()]
    missing += [name for name in ("containerd", "runc", "ctr", "iptables") if shutil.which(name) is None]
    missing += [str(cni_bin_dir() / p) for p in ("bridge", "host-local", "loopback", "portmap")
                if not (cni_bin_dir() / p).exists()]
    if missing:
        raise ClusterError(f"missing: {', '.join(missing)} (bash toolchain/bootstrap.sh cluster builds and "
                           "installs them; make cluster-up runs it)")
    with cluster_net.registry_lock():
        _sweep(folder)
        running = [s for s, e in cluster_net.entries().items() if e["folder"] == str(folder)]
        if running:
            entry = cluster_net.read_entry(running[0])
            raise ClusterRunning(f"a cluster already runs in {folder} ({entry['nodes']} nodes, slot {running[0]}, "
                                 f"kubeconfig {cluster.kubeconfig}); nothing changed (make cluster-down stops it)")
        # A folder of a cluster that is gone (its slot swept): what is in it is stale. Anything else
        # in it is not the cluster's: refused rather than removed.
        strangers = sorted(p.name for p in folder.iterdir() if p.name not in FOLDER_ENTRIES) \
            if folder.is_dir() else []
        if strangers:
            raise ClusterError(f"{folder} holds files that are not a cluster's ({', '.join(strangers[:5])}): "
                               "choose an empty or new folder")
        _unmount_under(folder)
        shutil.rmtree(folder, ignore_errors=True)
        slot = cluster_net.claim(folder, nodes)
    layout = Layout(slot, nodes)
    try:
        refs = cluster_images.image_refs()
        images_root = cluster_images.images_root()
        phase("images (built and imported once per machine)")
        for sub in ("pids", "logs", "pki", "control-plane/etcd"):
            (folder / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        node_names = [f"node-{i}" for i in range(1, nodes + 1)]
        tokens = cluster_pki.write(folder / "pki", [layout.control_plane_address, layout.kubernetes_service_ip],
                                   node_names)
        pki = cluster_pki.Paths(folder / "pki")
        _write(folder / "cluster.json", json.dumps({
            "slot": slot, "nodes": nodes, "url": layout.api_url, "token": tokens["admin"],
            "ca_file": str(pki.ca_cert)}, indent=2), 0o600)
        cluster_pki.write_kubeconfig(cluster.kubeconfig, layout.api_url, pki.ca_cert, tokens["admin"])
        cp = folder / "control-plane"
        local = "https://127.0.0.1:6443"
        for who in ("controller-manager", "scheduler"):
            cluster_pki.write_kubeconfig(cp / f"{who}.kubeconfig", local, pki.ca_cert, tokens[who], who)
        cluster_pki.write_kubeconfig(cp / "kube-proxy.kubeconfig", local, pki.ca_cert, tokens["kube-proxy"],
                                     "system:kube-proxy")
        _write(cp / "kube-proxy.yaml", _kube_proxy_config(cluster, "control-plane", layout.control_plane_address,
                                                          cp / "kube-proxy.kubeconfig"))
        pause = cluster_images.containerd_ref(refs["pause"])
        for node in cluster.nodes:
            _prepare_node(cluster, node, tokens, pause)
        cluster_net.create(layout)
        phase("network, credentials and configuration")

        # The nodes' containerd and images while the control plane starts.
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=nodes)
        node_timings: dict[str, float] = {}
        runtimes = [pool.submit(_start_node_runtime, cluster, node, images_root, node_timings)
                    for node in cluster.nodes]
        _start(cluster, "etcd", [str(BIN / "etcd"), str(cp / "etcd"), "http://127.0.0.1:2379",
                                 "http://127.0.0.1:2380"], layout.control_plane_ns)
        _start(cluster, "kube-apiserver", [
            str(BIN / "kube-apiserver"), "--etcd-servers=http://127.0.0.1:2379", "--bind-address=0.0.0.0",
            f"--advertise-address={layout.control_plane_address}", f"--secure-port={cluster_net.API_PORT}",
            f"--tls-cert-file={pki.apiserver_cert}", f"--tls-private-key-file={pki.apiserver_key}",
            f"--client-ca-file={pki.ca_cert}", f"--token-auth-file={pki.tokens}",
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
            "--allow-privileged=true",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}", f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={layout.service_cidr}",
            f"--kubelet-client-certificate={pki.kubelet_client_cert}",
            f"--kubelet-client-key={pki.kubelet_client_key}", "--kubelet-preferred-address-types=InternalIP",
            f"--default-not-ready-toleration-seconds={TOLERATION_SECONDS}",
            f"--default-unreachable-toleration-seconds={TOLERATION_SECONDS}",
            "--profiling=false",
        ], layout.control_plane_ns)
        _wait(lambda: cluster.request("GET", "/readyz", timeout=5).status_code == 200, "kube-apiserver ready",
              cluster, "kube-apiserver")
        phase("etcd and kube-apiserver ready")
        # Started now: it waits 30 s for a Node of its name (there is none) before it programs the
        # Services, and that runs while the nodes come up.
        _start(cluster, "kube-proxy", [str(BIN / "kube-proxy"), f"--config={cp / 'kube-proxy.yaml'}"],
               layout.control_plane_ns)
        common = ["--leader-elect=false", "--secure-port=0"]
        _start(cluster, "kube-controller-manager", [
            str(BIN / "kube-controller-manager"), f"--kubeconfig={cp / 'controller-manager.kubeconfig'}", *common,
            "--use-service-account-credentials=true", f"--service-account-private-key-file={pki.sa_key}",
            f"--root-ca-file={pki.ca_cert}", f"--cluster-signing-cert-file={pki.ca_cert}",
            f"--cluster-signing-key-file={pki.ca_key}", f"--cluster-cidr={layout.cluster_cidr}",
            f"--service-cluster-ip-range={layout.service_cidr}",
            f"--node-monitor-period={NODE_MONITOR_PERIOD}", f"--node-monitor-grace-period={NODE_MONITOR_GRACE}",
            f"--flex-volume-plugin-dir={cp / 'volume-plugins'}",
        ], layout.control_plane_ns)
        _start(cluster, "kube-scheduler", [
            str(BIN / "kube-scheduler"), f"--kubeconfig={cp / 'scheduler.kubeconfig'}", *common,
        ], layout.control_plane_ns)
        for obj in [*cluster_addons.coredns(refs["coredns"], layout.dns_service_ip, min(2, nodes)),
                    *cluster_addons.local_path_provisioner(
                        refs["local-path-provisioner"], refs["postgres"],
                        {n.name: str(cluster.node_dir(n) / "volumes") for n in cluster.nodes})]:
            cluster.apply(obj)
        phase("controllers, scheduler, cluster DNS and storage objects")
        for runtime in runtimes:
            runtime.result()
        pool.shutdown()
        timings["  of which the images and containerd, the slowest node"] = max(node_timings.values())
        phase("nodes' images and containerd (beside the control plane)")
        for node in cluster.nodes:
            _start_node_agents(cluster, node)
        for node in cluster.nodes:
            _wait(lambda: cluster.request("GET", f"/api/v1/nodes/{node.name}").status_code == 200,
                  f"node {node.name} registered", cluster, f"{node.name}.kubelet")
            cluster.request("PATCH", f"/api/v1/nodes/{node.name}",
                            headers={"Content-Type": "application/merge-patch+json"},
                            data=json.dumps({"spec": {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr]}}))
        for node in cluster.nodes:
            _wait(lambda: cluster.node_ready(node.name), f"node {node.name} Ready", cluster, f"{node.name}.kubelet")
        phase("kubelets and kube-proxies, nodes Ready")
        for node in cluster.nodes:
            _wait(lambda: _HTTP.get(f"http://{node.address}:10256/healthz", timeout=2).ok,
                  f"kube-proxy of {node.name} synced", cluster, f"{node.name}.kube-proxy")
        _wait(lambda: _deployment_available(cluster, "kube-system", "coredns"), "CoreDNS available", cluster,
              "kube-controller-manager")
        _wait(lambda: _deployment_available(cluster, cluster_addons.LPP_NAMESPACE, "local-path-provisioner"),
              "local-path-provisioner available", cluster, "kube-controller-manager")
        phase("CoreDNS and local-path-provisioner available")
        _wait(lambda: _tcp_answers(layout.kubernetes_service_ip, 443) and _tcp_answers(layout.dns_service_ip, 53),
              "the Services answering the machine (the control plane's kube-proxy)", cluster, "kube-proxy")
        phase("Services reachable from the machine")
    except BaseException:
        down(folder)
        raise
    timings["total"] = time.monotonic() - start
    return cluster


def _start_node_runtime(cluster: Cluster, node: Node, images_root: Path | None = None,
                        timings: dict[str, float] | None = None) -> None:
    """A node's containerd (its cgroup and runtime folder made first); its root a copy of the images'
    root (cluster_images.containerd_root) when given: a new node's disk, the images on it."""
    clock = time.monotonic()
    if images_root is not None:
        cluster_images.clone_root(images_root, cluster.node_dir(node) / "containerd")
    run_dir = cluster.node_run_dir(node)
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for group in cluster_net.CGROUP_ROOT.iterdir():
        if group.is_dir() and (group / "cgroup.procs").exists():
            (group / cluster.node_cgroup(node).lstrip("/")).mkdir(parents=True, exist_ok=True)
    _start(cluster, f"{node.name}.containerd", ["containerd", "--config", str(cluster.node_dir(node) / "containerd.toml")],
           node.namespace, ready=lambda: cluster.ctr(node, "version"))
    if timings is not None:
        timings[node.name] = time.monotonic() - clock


def _start_node_agents(cluster: Cluster, node: Node) -> None:
    """A node's kubelet and kube-proxy."""
    node_dir = cluster.node_dir(node)
    _start(cluster, f"{node.name}.kubelet", [
        str(BIN / "kubelet"), f"--config={node_dir / 'kubelet.yaml'}", f"--kubeconfig={node_dir / 'kubeconfig'}",
        f"--root-dir={node_dir / 'kubelet'}", f"--cert-dir={node_dir / 'kubelet' / 'pki'}",
        f"--hostname-override={node.name}", f"--node-ip={node.address}",
    ], node.namespace)
    _start(cluster, f"{node.name}.kube-proxy", [str(BIN / "kube-proxy"), f"--config={node_dir / 'kube-proxy.yaml'}"],
           node.namespace)


def down(folder: Path = DEFAULT_FOLDER) -> None:
    """Stops every process of the cluster in folder by PID (kubelets first, so they restart nothing;
    then every container of every pod), removes what they left (mounts, cgroups, runtime folders,
    log links, shim sockets), the namespaces, the machine's link and routes, the slot, and the folder.
    Also removes what killed runs left in slots no live cluster holds."""
    folder = folder.resolve()
    cluster = Cluster(folder)
    slot = None
    with contextlib.suppress(OSError, ValueError, KeyError):
        slot = cluster.settings()["slot"]
    if slot is not None and (entry := cluster_net.read_entry(slot)) and entry["folder"] == str(folder):
        for node in cluster.nodes:
            _kill_by_pid_file(cluster, f"{node.name}.kubelet")
        for node in cluster.nodes:
            _stop_node_processes(cluster, node)
        for name in reversed(CONTROL_PLANE):
            _kill_by_pid_file(cluster, name, signal.SIGTERM)
    else:
        # No slot of its own (never started, or already swept): stop whatever its pid files name.
        for name in cluster.pids():
            _kill_by_pid_file(cluster, name)
    with cluster_net.registry_lock():
        if slot is not None and (entry := cluster_net.read_entry(slot)) and entry["folder"] == str(folder):
            _remove_slot(slot, folder)
        _sweep(folder)
        cluster_net.restore_machine_if_idle()
    _unmount_under(folder)
    for link in _log_links(folder):
        Path(link).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def running_cluster(folder: Path, nodes: int = DEFAULT_NODES) -> Iterator[Cluster]:
    """A cluster for the length of a with block, stopped and removed afterwards."""
    cluster = up(folder, nodes)
    try:
        yield cluster
    finally:
        down(folder)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m toolchain.cluster.cluster", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--nodes", default=str(DEFAULT_NODES), help="the number of nodes (NODES), 1 to 16")
    args = parser.parse_args(argv)
    try:
        if args.action == "up":
            timings: dict[str, float] = {}
            cluster = up(args.folder, cluster_net.node_count(args.nodes), timings=timings)
            for name, seconds in timings.items():
                print(f"  {name:<58} {seconds:6.1f} s")
            layout = cluster.layout
            print(f"cluster of {layout.nodes} nodes up in {timings['total']:.1f} s: API server {cluster.url}, "
                  f"pods {layout.cluster_cidr}, Services {layout.service_cidr}, through {layout.host_link}")
            print(cluster.kubeconfig)
        else:
            down(args.folder)
            print(f"cluster in {args.folder.resolve()} down")
    except (ClusterError, NetworkError, cluster_images.ImageError) as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
