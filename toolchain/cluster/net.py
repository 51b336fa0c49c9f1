"""The network of a test cluster: network namespaces, links, addresses and routes, all the project's own.

Nothing of a cluster's may reach beyond 127.0.0.1 or the namespaces made here, so each cluster gets a
*slot*: a /19 of 198.18.0.0/15 (reserved for benchmarks, routed nowhere) and names of its own, and
lives in namespaces named after it (docs/cluster.md draws the layout):

    dbc<S>-net   a bridge (br0) and nothing else: the cluster's switch
    dbc<S>-cp    the control plane (etcd, kube-apiserver, controllers, scheduler, a kube-proxy)
    dbc<S>-n<I>  node I (containerd, kubelet, kube-proxy, its pods' bridge cni0)

Slot S's block B = 198.18.0.0 + S * 8192:
    B + (I-1).0/24      node I's pods (the cluster CIDR is B/20: 16 nodes at most)
    B + 16.0/24         Services (.1 the API server's `kubernetes`, .10 cluster DNS)
    B + 17.0/24         the switch: .1 the machine (link dbc<S>h), .2 the control plane, .(10+I) node I

The machine's own namespace gets one veth link into the switch (dbc<S>h) and routes for each node's
pods (via the node) and for the Services (via the control plane, whose kube-proxy answers for them).
No namespace has a default route: nothing of the cluster's can be sent anywhere else.

Slots are claimed in a registry (/run/dbcreds-clusters), under a lock, so two clusters (a developer's
and the tests') never share one, and what a killed run left in a slot is
found and removed by the next claim or release. Standard library only: the Makefile's check of NODES
runs it before the virtualenv exists.
"""

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

SUPERNET = ipaddress.ip_network("198.18.0.0/15")
SLOT_PREFIX = 19
SLOTS = 2 ** (SLOT_PREFIX - SUPERNET.prefixlen)  # 16
MAX_NODES = 16
DEFAULT_NODES = 3
REGISTRY = Path("/run/dbcreds-clusters")
NETNS_DIR = Path("/run/netns")
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: The names this module makes, by slot: namespaces dbc<S>-..., the machine's link dbc<S>h.
NAMESPACE_RE = re.compile(r"^dbc(\d+)-(net|cp|n\d+)$")
LINK_RE = re.compile(r"^dbc(\d+)h$")
API_PORT = 6443


class NetworkError(RuntimeError):
    pass


def node_count(text: str | int) -> int:
    """The NODES setting as a number of nodes, refused (naming the setting) outside 1..MAX_NODES."""
    try:
        count = int(str(text).strip())
    except ValueError:
        raise NetworkError(f"NODES must be a whole number of nodes from 1 to {MAX_NODES}, not {text!r}") from None
    if not 1 <= count <= MAX_NODES:
        raise NetworkError(f"NODES must be a whole number of nodes from 1 to {MAX_NODES}, not {count} "
                           f"(make cluster-up NODES=3)")
    return count


@dataclass(frozen=True)
class Layout:
    """The names and addresses of the cluster in slot `slot` with `nodes` nodes."""

    slot: int
    nodes: int

    @property
    def block(self) -> ipaddress.IPv4Network:
        return list(SUPERNET.subnets(new_prefix=SLOT_PREFIX))[self.slot]

    def _subnet(self, index: int) -> ipaddress.IPv4Network:
        return ipaddress.ip_network(f"{self.block.network_address + index * 256}/24")

    @property
    def prefix(self) -> str:
        return f"dbc{self.slot}"

    @property
    def cluster_cidr(self) -> str:
        return str(ipaddress.ip_network(f"{self.block.network_address}/20"))

    def pod_cidr(self, index: int) -> str:
        return str(self._subnet(index - 1))

    @property
    def service_cidr(self) -> str:
        return str(self._subnet(16))

    @property
    def kubernetes_service_ip(self) -> str:
        return str(self._subnet(16).network_address + 1)

    @property
    def dns_service_ip(self) -> str:
        return str(self._subnet(16).network_address + 10)

    @property
    def lan(self) -> ipaddress.IPv4Network:
        return self._subnet(17)

    @property
    def host_address(self) -> str:
        return str(self.lan.network_address + 1)

    @property
    def control_plane_address(self) -> str:
        return str(self.lan.network_address + 2)

    def node_address(self, index: int) -> str:
        return str(self.lan.network_address + 10 + index)

    @property
    def api_url(self) -> str:
        return f"https://{self.control_plane_address}:{API_PORT}"

    # Names.
    @property
    def bridge_ns(self) -> str:
        return f"{self.prefix}-net"

    @property
    def control_plane_ns(self) -> str:
        return f"{self.prefix}-cp"

    def node_ns(self, index: int) -> str:
        return f"{self.prefix}-n{index}"

    def node_port(self, index: int) -> str:
        """Node index's port on the switch (the link's end in the bridge namespace)."""
        return f"n{index}"

    @property
    def host_link(self) -> str:
        return f"{self.prefix}h"

    @property
    def run_dir(self) -> Path:
        """Sockets and state that a machine loses at boot: containerd's, runc's, the pods' namespaces."""
        return Path("/run") / self.prefix

    @property
    def cgroup(self) -> str:
        """The cgroup (in every hierarchy) under which each node's kubelet puts its pods."""
        return f"/{self.prefix}"

    def namespaces(self) -> list[str]:
        return [self.bridge_ns, self.control_plane_ns, *(self.node_ns(i) for i in range(1, self.nodes + 1))]

    def host_routes(self) -> dict[str, str]:
        """The machine's routes into the cluster: destination -> gateway (all through host_link)."""
        routes = {self.pod_cidr(i): self.node_address(i) for i in range(1, self.nodes + 1)}
        routes[self.service_cidr] = self.control_plane_address
        return routes


def nsenter(namespace: str) -> list[str]:
    """The argv prefix that runs a program in a namespace's network, and in the machine's mounts
    (kubelet and containerd must share them; `ip netns exec` would give each a mount namespace)."""
    return ["nsenter", f"--net={NETNS_DIR / namespace}", "--"]


def _run(argv: list[str], what: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, input=stdin)
    if check and result.returncode != 0:
        raise NetworkError(f"{what} failed: {' '.join(argv)}: {result.stderr.strip()}")
    return result


def ip_batch(commands: list[str], namespace: str | None = None, what: str = "ip") -> None:
    """Runs `ip` commands (one a line, without the leading `ip`) in one process, in a namespace."""
    argv = ["ip", *(["-n", namespace] if namespace else []), "-batch", "-"]
    _run(argv, what, stdin="\n".join(commands) + "\n")


def write_sysctls(namespace: str, values: dict[str, str]) -> None:
    """Sets /proc/sys/net values inside a namespace (they are per namespace: the machine's stay as they are)."""
    script = "; ".join(f"echo {value} > /proc/sys/{key.replace('.', '/')}" for key, value in values.items())
    _run([*nsenter(namespace), "sh", "-ec", script], f"sysctls in {namespace}")


#: Forwarding for the pods, without ICMP redirects (a namespace that forwards out of the interface a
#: packet came in on must not teach the sender a shortcut), and without reverse-path filtering.
ROUTER_SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.conf.all.send_redirects": "0",
    "net.ipv4.conf.default.send_redirects": "0",
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
}


def create(layout: Layout) -> None:
    """Makes the namespaces, the switch, every link and address, and the routes (the machine's too)."""
    for namespace in layout.namespaces():
        _run(["ip", "netns", "add", namespace], f"making namespace {namespace}")
    bridge = layout.bridge_ns
    # The switch: a bridge with no address; it only carries frames (no iptables on them there).
    commands = ["link set lo up", "link add br0 type bridge", "link set br0 up"]
    members = [("cp", layout.control_plane_ns)] + [(layout.node_port(i), layout.node_ns(i))
                                                    for i in range(1, layout.nodes + 1)]
    for port, namespace in members:
        commands += [f"link add {port} type veth peer name eth0 netns {namespace}",
                     f"link set {port} master br0", f"link set {port} up"]
    ip_batch(commands, bridge, "making the switch")
    write_sysctls(bridge, {"net.ipv4.ip_forward": "0", "net.bridge.bridge-nf-call-iptables": "0",
                           "net.bridge.bridge-nf-call-ip6tables": "0"})
    prefix = layout.lan.prefixlen
    # The control plane: on the switch, with a route to each node's pods through that node.
    ip_batch(["link set lo up", f"addr add {layout.control_plane_address}/{prefix} dev eth0", "link set eth0 up",
              *(f"route add {layout.pod_cidr(i)} via {layout.node_address(i)} dev eth0"
                for i in range(1, layout.nodes + 1))], layout.control_plane_ns, "addressing the control plane")
    write_sysctls(layout.control_plane_ns, ROUTER_SYSCTLS)
    for index in range(1, layout.nodes + 1):
        namespace = layout.node_ns(index)
        ip_batch(["link set lo up", f"addr add {layout.node_address(index)}/{prefix} dev eth0", "link set eth0 up",
                  *(f"route add {layout.pod_cidr(other)} via {layout.node_address(other)} dev eth0"
                    for other in range(1, layout.nodes + 1) if other != index)],
                 namespace, f"addressing node {index}")
        # Traffic between two pods of a node crosses its bridge: iptables must see it (Services).
        write_sysctls(namespace, {**ROUTER_SYSCTLS, "net.bridge.bridge-nf-call-iptables": "1"})
    # The machine's link into the switch, and its routes into the cluster through it.
    ip_batch([f"link add {layout.host_link} type veth peer name host netns {bridge}"], None, "making the machine's link")
    ip_batch(["link set host master br0", "link set host up"], bridge, "plugging the machine's link in")
    ip_batch([f"addr add {layout.host_address}/{prefix} dev {layout.host_link}", f"link set {layout.host_link} up",
              *(f"route add {cidr} via {gateway} dev {layout.host_link}"
                for cidr, gateway in layout.host_routes().items())], None, "the machine's routes")


def set_node_plugged(layout: Layout, index: int, plugged: bool) -> None:
    """Plugs node index's cable into the switch or pulls it (its own namespace stays as it is)."""
    ip_batch([f"link set {layout.node_port(index)} {'up' if plugged else 'down'}"], layout.bridge_ns,
             f"{'plugging' if plugged else 'unplugging'} node {index}")


# What is left of a slot on this machine, found by name (for clean-up and for tests).

def slot_namespaces(slot: int) -> list[str]:
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir()
                  if (m := NAMESPACE_RE.match(p.name)) and int(m.group(1)) == slot)


def slot_links(slot: int) -> list[str]:
    return [name for name in os.listdir("/sys/class/net") if (m := LINK_RE.match(name)) and int(m.group(1)) == slot]


def slot_routes(slot: int) -> list[str]:
    """The machine's routes through the slot's link, or into the slot's block."""
    layout = Layout(slot, 1)
    result = _run(["ip", "-4", "route", "show", "table", "all"], "listing routes", check=False)
    found = []
    for line in result.stdout.splitlines():
        words = line.split()
        if f"dev {layout.host_link}" in line or (
                words and _in_block(words[0], layout.block)):
            found.append(line)
    return found


def _in_block(text: str, block: ipaddress.IPv4Network) -> bool:
    with contextlib.suppress(ValueError):
        return ipaddress.ip_network(text, strict=False).subnet_of(block)
    return False


def slot_cgroups(slot: int) -> list[Path]:
    name = Layout(slot, 1).cgroup.lstrip("/")
    return sorted(p for p in CGROUP_ROOT.glob(f"*/{name}") if p.is_dir())


def remove_cgroup_tree(group: Path, keep_top: bool = False) -> None:
    """Removes a cgroup folder and every one below it, deepest first (their processes must be gone)."""
    if not group.is_dir():
        return
    subs = sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
    for sub in [*subs, *([] if keep_top else [group])]:
        for _ in range(50):
            try:
                sub.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)


def cgroup_pids(group: Path) -> list[int]:
    """Every process in a cgroup folder and below it."""
    pids = []
    for procs in group.rglob("cgroup.procs") if group.is_dir() else []:
        with contextlib.suppress(OSError, ValueError):
            pids += [int(line) for line in procs.read_text().split()]
    return pids


def destroy(slot: int) -> None:
    """Removes the slot's namespaces and the machine's link (its routes go with it); no error if absent."""
    layout = Layout(slot, 1)
    for link in slot_links(slot):
        _run(["ip", "link", "del", link], f"removing link {link}", check=False)
    for namespace in slot_namespaces(slot):
        _run(["ip", "netns", "del", namespace], f"removing namespace {namespace}", check=False)
    # Routes that outlived their link (there should be none): removed too.
    for line in slot_routes(slot):
        words = line.split()
        if words and _in_block(words[0], layout.block):
            _run(["ip", "route", "del", words[0]], "removing a route", check=False)


# The slot registry.

@contextlib.contextmanager
def registry_lock() -> Iterator[None]:
    """Holds the registry's lock (flock on its folder); the folder goes when the last cluster is down."""
    while True:
        REGISTRY.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(REGISTRY, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # Removed by a release while we waited: lock the new one instead.
            if REGISTRY.is_dir() and os.path.samestat(os.fstat(fd), os.stat(REGISTRY)):
                yield
                return
        finally:
            os.close(fd)


def _entry_path(slot: int) -> Path:
    return REGISTRY / f"slot-{slot}.json"


def read_entry(slot: int) -> dict | None:
    try:
        return json.loads(_entry_path(slot).read_text())
    except (OSError, ValueError):
        return None


def entries() -> dict[int, dict]:
    found = {}
    for slot in range(SLOTS):
        entry = read_entry(slot)
        if entry is not None:
            found[slot] = entry
    return found


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


#: The machine's own kernel settings that every kubelet sets when it starts (container_manager_linux.go:
#: setupKernelTunables; they are not per namespace): recorded when the first cluster claims a slot,
#: put back when the last one is released.
KUBELET_SYSCTLS = ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
                   "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes")
#: Fixed folders of the machine's that kubelet and containerd use whatever they are told (kubelet's
#: device-plugin socket and log links, the CNI library's cache, the shims' sockets), and the one `ip
#: netns` makes (a mount point of its own): each one that did not exist before the first cluster is
#: removed (unmounted first) after the last one.
MACHINE_FOLDERS = ("/var/lib/kubelet", "/var/log/containers", "/var/lib/cni", "/run/containerd", str(NETNS_DIR))
_MACHINE_FILE = "machine.json"


def claim(folder: Path, nodes: int, owner: int | None = None) -> int:
    """Claims the lowest free slot for the cluster in folder (the registry lock held by the caller), for
    the process `owner` (this one unless given)."""
    saved = REGISTRY / _MACHINE_FILE
    if not saved.exists():
        saved.write_text(json.dumps({
            "sysctls": {key: Path("/proc/sys", key).read_text().strip() for key in KUBELET_SYSCTLS},
            "absent": [folder for folder in MACHINE_FOLDERS if not os.path.lexists(folder)]}))
    for slot in range(SLOTS):
        entry = read_entry(slot)
        if entry is None and not slot_namespaces(slot) and not slot_links(slot):
            _entry_path(slot).write_text(json.dumps({"folder": str(folder), "nodes": nodes,
                                                     "owner": os.getpid() if owner is None else owner,
                                                     "since": time.time()}))
            return slot
    raise NetworkError(f"every one of the {SLOTS} cluster slots is in use: {entries()}")


def release(slot: int) -> None:
    """Forgets the slot (the registry lock held by the caller). The registry and the machine's record stay:
    a claim may follow under the same lock (an `up` that swept a killed run's last slot)."""
    _entry_path(slot).unlink(missing_ok=True)


def restore_machine_if_idle() -> None:
    """With no slot left (the registry lock held by the caller, who lets go of it next): puts the machine's
    kernel settings back as they were before the first cluster, removes the fixed folders that were not
    there then, and removes the registry."""
    if entries():
        return
    saved = REGISTRY / _MACHINE_FILE
    with contextlib.suppress(OSError, ValueError):
        machine = json.loads(saved.read_text())
        for key, value in machine["sysctls"].items():
            if Path("/proc/sys", key).read_text().strip() != value:
                Path("/proc/sys", key).write_text(value)
        for folder in machine["absent"]:
            if folder == str(NETNS_DIR) and any(NETNS_DIR.iterdir()):
                continue  # someone else's namespaces
            if os.path.ismount(folder):
                _run(["umount", folder], f"unmounting {folder}", check=False)
            shutil.rmtree(folder, ignore_errors=True)
    saved.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        REGISTRY.rmdir()


def used_slots() -> set[int]:
    """Slots with a registry entry, a namespace or a link."""
    slots = set(entries())
    if NETNS_DIR.is_dir():
        slots |= {int(m.group(1)) for p in NETNS_DIR.iterdir() if (m := NAMESPACE_RE.match(p.name))}
    slots |= {int(m.group(1)) for n in os.listdir("/sys/class/net") if (m := LINK_RE.match(n))}
    return {s for s in slots if s < SLOTS}


def remove_run_dir(slot: int) -> None:
    shutil.rmtree(Layout(slot, 1).run_dir, ignore_errors=True)


def main(argv: list[str]) -> int:
    """`python3 -m toolchain.cluster.net nodes N`: checks the NODES setting (the Makefile, before
    anything is built)."""
    if len(argv) == 2 and argv[0] == "nodes":
        try:
            node_count(argv[1])
        except NetworkError as error:
            print(f"ERROR: {error}", file=sys.stderr)
            return 2
        return 0
    print(main.__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
