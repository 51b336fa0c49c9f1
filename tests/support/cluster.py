"""A real single-node Kubernetes cluster on 127.0.0.1, for tests and for people.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubelet (all
built by `make bootstrap-all` from k8s.io/kubernetes), and Debian's containerd
with runc. Everything lives under one folder; each process is started detached
with its PID recorded there, so that `make cluster-up` can return and `make
cluster-down` (or a test) stop them later, by PID, and clean up what kubelet
and containerd leave behind (mounts, cgroups, runtime folders).

No registry and no pod network here: the images (the docker target's OpenBao
and PostgreSQL images, built from the repository's Dockerfiles, and a pause
image built from Kubernetes' own pause.c) are imported into containerd, and pods
use the host's network, listening on 127.0.0.1.

    python -m tests.support.cluster up [FOLDER]     start (default .data/cluster); prints the kubeconfig
    python -m tests.support.cluster down [FOLDER]   stop everything and remove the folder
"""

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import requests

from components.docker import images
from components.docker.daemon import DockerEngine
from components.servers.process import running_pid, start_detached, terminate
from tests.support.certs import issue_certificate, make_ca
from tests.support.kube_apiserver import BIN, apiserver_argv, write_credentials, write_kubeconfig
from toolchain.env import ROOT, toolchain_version

DEFAULT_FOLDER = ROOT / ".data" / "cluster"
#: The node's name and address: kubelet refuses a loopback --node-ip, not a loopback hostname.
NODE = "127.0.0.1"
#: Started in this order, stopped in the reverse one.
PROCESSES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "containerd", "kubelet")
CONTROLLERS = (
    "garbage-collector-controller", "namespace-controller", "statefulset-controller",
    "persistentvolume-binder-controller", "persistentvolume-protection-controller",
    "persistentvolumeclaim-protection-controller",
    # Takes the not-ready taint kubelet registers the node with off once the node is Ready.
    "node-lifecycle-controller",
)
#: The cluster's own ports (a test cluster takes free ones).
DEFAULT_PORTS = {"etcd": 16379, "etcd-peer": 16380, "apiserver": 16443, "kubelet": 16250}
#: containerd's namespace for Kubernetes' images and containers.
K8S_NAMESPACE = "k8s.io"
KUBERNETES_VERSION = toolchain_version("KUBERNETES_VERSION")


class ClusterError(RuntimeError):
    pass


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def pause_binary() -> Path:
    """Kubernetes' pause (build/pause/linux/pause.c of k8s.io/kubernetes), compiled statically, cached."""
    out = images.cache_dir() / f"pause-{KUBERNETES_VERSION}" / "pause"
    if out.exists():
        return out
    module = subprocess.run(["go", "mod", "download", "-json", f"k8s.io/kubernetes@v{KUBERNETES_VERSION}"],
                            capture_output=True, text=True, env={**os.environ, "GOFLAGS": "-mod=mod"})
    if module.returncode != 0:
        raise ClusterError(f"the Go module proxy could not serve k8s.io/kubernetes@v{KUBERNETES_VERSION}: "
                           f"{module.stderr.strip()}")
    source = Path(json.loads(module.stdout)["Dir"]) / "build" / "pause" / "linux" / "pause.c"
    out.parent.mkdir(parents=True, exist_ok=True)
    build = subprocess.run(["gcc", "-Os", "-static", "-o", f"{out}.tmp", str(source),
                            f'-DVERSION="v{KUBERNETES_VERSION}"'], capture_output=True, text=True)
    if build.returncode != 0:
        raise ClusterError(f"gcc could not build {source}: {build.stderr.strip()}")
    Path(f"{out}.tmp").rename(out)
    return out


PAUSE_DOCKERFILE = """# Kubernetes' pause, the sandbox of every pod; built here, never pulled.
FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
"""


def image_refs() -> dict[str, str]:
    """The images of the cluster by role: the docker target's two, tagged with their contexts' keys,
    and the pause image."""
    return {**images.image_names(), "pause": f"dbcreds-pause:{KUBERNETES_VERSION}"}


def images_archive() -> Path:
    """The three images as one `docker save` archive, built once per machine (cached, keyed by the
    contexts and the Dockerfiles), on a Docker engine started for it and removed after."""
    refs = image_refs()
    dockerfiles = "".join((images.DOCKERFILES / f).read_text() for f in ("openbao.Dockerfile", "postgres.Dockerfile"))
    key = _short_hash(json.dumps([refs, dockerfiles, PAUSE_DOCKERFILE]))
    archive = images.cache_dir() / f"cluster-images-{key}.tar"
    if archive.exists():
        return archive
    missing = images.missing_contexts()
    if missing:
        raise ClusterError(f"the images' build contexts are not made yet: {'; '.join(missing)}")
    pause = images.cache_dir() / f"pause-context-{key}"
    pause.mkdir(parents=True, exist_ok=True)
    shutil.copy2(pause_binary(), pause / "pause")
    (pause / "Dockerfile").write_text(PAUSE_DOCKERFILE)
    engine = DockerEngine(images.cache_dir() / f"docker-{key}")
    engine.ensure_running()
    try:
        for role, context, dockerfile in (
                ("openbao", images.openbao_context(), images.DOCKERFILES / "openbao.Dockerfile"),
                ("postgres", images.postgres_context(), images.DOCKERFILES / "postgres.Dockerfile"),
                ("pause", pause, pause / "Dockerfile")):
            engine.docker("build", "--quiet", "--tag", refs[role], "--file", str(dockerfile), str(context))
        engine.docker("save", "--output", f"{archive}.tmp", *refs.values())
        Path(f"{archive}.tmp").rename(archive)
    finally:
        engine.remove()
        shutil.rmtree(pause, ignore_errors=True)
    return archive


@dataclass(frozen=True)
class Cluster:
    """One cluster's folder, and what is known of it from there."""

    folder: Path

    @property
    def kubeconfig(self) -> Path:
        return self.folder / "kubeconfig"

    @property
    def run_dir(self) -> Path:
        """containerd's state (its sockets: short paths, under 108 bytes)."""
        return Path("/run") / f"dbcreds-cluster-{_short_hash(str(self.folder))}"

    @property
    def containerd_socket(self) -> Path:
        return self.run_dir / "containerd.sock"

    @property
    def cgroup_root(self) -> str:
        """kubelet's cgroup parent: the pods' cgroups of this cluster only, removed at the end."""
        return f"/dbcreds-cluster-{_short_hash(str(self.folder))}"

    def _pid_file(self, name: str) -> Path:
        return self.folder / "pids" / f"{name}.pid"

    def pids(self) -> dict[str, int]:
        """The processes of this cluster that run, by name."""
        found = {name: running_pid(self._pid_file(name), str(self.folder)) for name in PROCESSES}
        return {name: pid for name, pid in found.items() if pid is not None}

    def settings(self) -> dict:
        return json.loads((self.folder / "cluster.json").read_text())

    def request(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs) -> requests.Response:
        """A request to the API server as its admin."""
        settings = self.settings()
        return requests.request(method, settings["url"] + path,
                                headers={"Authorization": f"Bearer {settings['token']}", **(headers or {})},
                                verify=settings["ca_file"], timeout=30, **kwargs)

    def ctr(self, *args: str, stdin: Path | None = None) -> str:
        """containerd's own CLI, in Kubernetes' namespace."""
        with open(stdin or os.devnull, "rb") as feed:
            result = subprocess.run(["ctr", "--address", str(self.containerd_socket), "--namespace", K8S_NAMESPACE,
                                     *args], stdin=feed, capture_output=True, text=True)
        if result.returncode != 0:
            raise ClusterError(f"ctr {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def pods(self, namespace: str) -> list[dict]:
        response = self.request("GET", f"/api/v1/namespaces/{namespace}/pods")
        return response.json().get("items", []) if response.status_code == 200 else []

    def node_ready(self) -> bool:
        response = self.request("GET", f"/api/v1/nodes/{NODE}")
        if response.status_code != 200:
            return False
        conditions = response.json().get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def mounts(self) -> list[str]:
        """Mount points under the folder or the runtime folder."""
        points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        return [p for p in points if p.startswith((f"{self.folder}/", f"{self.run_dir}/"))]

    def cgroups(self) -> list[Path]:
        """This cluster's cgroup folders, in every hierarchy."""
        return [path for path in Path("/sys/fs/cgroup").glob(f"*{self.cgroup_root}") if path.is_dir()]


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _containerd_config(cluster: Cluster, pause_image: str) -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{cluster.folder / 'containerd'}"
state = "{cluster.run_dir / 'state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{cluster.containerd_socket}"

[ttrpc]
  address = "{cluster.containerd_socket}.ttrpc"

[{cri}]
  sandbox_image = "{pause_image}"
  # Root here lacks CAP_SYS_RESOURCE: runc may not lower oom_score_adj below its own.
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "{cluster.folder / 'cni' / 'bin'}"
  conf_dir = "{cluster.folder / 'cni' / 'conf'}"
"""


#: Host-network pods never call CNI, but the node is NotReady until a config exists.
CNI_CONFIG = json.dumps({"cniVersion": "1.0.0", "name": "loopback-only", "plugins": [{"type": "loopback"}]})


def _kubelet_config(cluster: Cluster, port: int) -> str:
    return f"""apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: {port}
readOnlyPort: 0
healthzPort: 0
containerRuntimeEndpoint: unix://{cluster.containerd_socket}
cgroupDriver: cgroupfs
cgroupRoot: {cluster.cgroup_root}
failSwapOn: false
failCgroupV1: false
# Only the API server (its client certificate) may use kubelet's API: logs, exec.
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: false}}
  x509: {{clientCAFile: "{cluster.folder / 'pki' / 'kubelet-client-ca.crt'}"}}
authorization:
  mode: AlwaysAllow
# A nearly full disk must not evict the stack's pods, nor collect its imported images.
evictionHard: {{memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}}
imageGCHighThresholdPercent: 100
resolvConf: ""
"""


def _wait(ready, what: str, cluster: Cluster, log: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if ready():
                return
        except (requests.RequestException, OSError, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            tail = (cluster.folder / "logs" / log).read_text(errors="replace")[-3000:]
            raise ClusterError(f"{what} not within {seconds:.0f}s; {log} ends:\n{tail}")
        time.sleep(0.5)


def _start(cluster: Cluster, name: str, argv: list[str], ready=lambda: None) -> None:
    """Starts one process detached, its PID recorded; its command line names the folder (how it is
    found again), and waits until ready() stops raising."""
    start_detached(argv, cluster._pid_file(name), cluster.folder / "logs" / f"{name}.log", ready,
                   f"{name} of the cluster in {cluster.folder}", ClusterError)


def up(folder: Path = DEFAULT_FOLDER, ports: dict[str, int] | None = None,
       timings: dict[str, float] | None = None) -> Cluster:
    """Starts the cluster in folder (if it is not running there) and imports the images; returns it
    once the node is Ready. `timings`, if given, gets each phase's seconds."""
    timings = {} if timings is None else timings
    clock = time.monotonic()

    def phase(name: str) -> None:
        nonlocal clock
        timings[name] = time.monotonic() - clock
        clock = time.monotonic()

    folder = folder.resolve()
    cluster = Cluster(folder)
    if cluster.pids():
        if set(cluster.pids()) == set(PROCESSES) and cluster.node_ready():
            return cluster
        down(folder)
    missing = [name for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet")
               if not (BIN / name).exists()]
    missing += [name for name in ("containerd", "runc", "ctr") if shutil.which(name) is None]
    if missing:
        raise ClusterError(f"missing: {', '.join(missing)} (make bootstrap-all builds and installs them)")
    ports = {**DEFAULT_PORTS, **(ports or {})}
    archive = images_archive()
    phase("images (built once per machine)")
    for sub in ("pids", "logs", "pki", "cni/bin", "cni/conf", "kubelet", "etcd"):
        (folder / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    # The API server's client certificate for kubelet (kubectl logs and exec go through it).
    kubelet_ca = make_ca("dbcreds cluster kubelet-client CA", 24 * 365)
    kubelet_client = issue_certificate(kubelet_ca["cert_pem"], kubelet_ca["private_key_pem"], "kube-apiserver",
                                       (), (), server=False, client=True, validity_hours=24 * 365)
    _write(folder / "pki" / "kubelet-client-ca.crt", kubelet_ca["cert_pem"])
    _write(folder / "pki" / "apiserver-kubelet-client.crt", kubelet_client["cert_pem"])
    _write(folder / "pki" / "apiserver-kubelet-client.key", kubelet_client["private_key_pem"], 0o600)
    token = write_credentials(folder / "pki")
    url = f"https://127.0.0.1:{ports['apiserver']}"
    ca_file = folder / "pki" / "apiserver.crt"
    _write(folder / "cluster.json", json.dumps({"url": url, "token": token, "ca_file": str(ca_file),
                                                "ports": ports}), 0o600)
    write_kubeconfig(cluster.kubeconfig, url, ca_file, token)
    try:
        etcd_url = f"http://127.0.0.1:{ports['etcd']}"
        _start(cluster, "etcd", [str(BIN / "etcd"), str(folder / "etcd"), etcd_url,
                                 f"http://127.0.0.1:{ports['etcd-peer']}"])
        _start(cluster, "kube-apiserver", [
            *apiserver_argv(etcd_url, ports["apiserver"], folder / "pki", folder / "pki"),
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            f"--kubelet-client-certificate={folder / 'pki' / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={folder / 'pki' / 'apiserver-kubelet-client.key'}",
        ])
        _wait(lambda: cluster.request("GET", "/readyz").status_code == 200, "kube-apiserver ready", cluster,
              "kube-apiserver.log")
        phase("etcd and kube-apiserver ready")
        common = [f"--kubeconfig={cluster.kubeconfig}", "--leader-elect=false", "--secure-port=0"]
        _start(cluster, "kube-controller-manager", [str(BIN / "kube-controller-manager"), *common,
                                                    f"--controllers={','.join(CONTROLLERS)}"])
        _start(cluster, "kube-scheduler", [str(BIN / "kube-scheduler"), *common])
        _write(folder / "cni" / "conf" / "10-loopback.conflist", CNI_CONFIG)
        _write(folder / "containerd.toml", _containerd_config(cluster, _docker_io(image_refs()["pause"])))
        cluster.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _start(cluster, "containerd", ["containerd", "--config", str(folder / "containerd.toml")],
               ready=lambda: cluster.ctr("version"))
        phase("controllers, scheduler, containerd")
        cluster.ctr("images", "import", "-", stdin=archive)
        phase("image import")
        _write(folder / "kubelet" / "config.yaml", _kubelet_config(cluster, ports["kubelet"]))
        for path in Path("/sys/fs/cgroup").iterdir():
            if path.is_dir() and (path / "cgroup.procs").exists():
                (path / cluster.cgroup_root.lstrip("/")).mkdir(exist_ok=True)
        _start(cluster, "kubelet", [
            str(BIN / "kubelet"), f"--config={folder / 'kubelet' / 'config.yaml'}",
            f"--kubeconfig={cluster.kubeconfig}", f"--root-dir={folder / 'kubelet' / 'root'}",
            f"--hostname-override={NODE}",
        ])
        _wait(cluster.node_ready, f"node {NODE} Ready", cluster, "kubelet.log")
        phase("kubelet, node Ready")
    except BaseException:
        down(folder)
        raise
    return cluster


def _docker_io(ref: str) -> str:
    """A short image reference as containerd names it."""
    return ref if "/" in ref else f"docker.io/library/{ref}"


def down(folder: Path = DEFAULT_FOLDER) -> None:
    """Stops every process of the cluster in folder (kubelet's and containerd's pods with them),
    unmounts what they left, removes their cgroups and the folder."""
    folder = folder.resolve()
    cluster = Cluster(folder)
    if (folder / "containerd.toml").exists() and "containerd" in cluster.pids():
        # kubelet first, so it restarts nothing; then every container and sandbox, by their shims.
        terminate(cluster._pid_file("kubelet"), str(folder))
        with contextlib.suppress(ClusterError):
            for task in cluster.ctr("tasks", "list", "--quiet").split():
                with contextlib.suppress(ClusterError):
                    cluster.ctr("tasks", "kill", "--signal", "SIGKILL", task)
    for name in reversed(PROCESSES):
        terminate(cluster._pid_file(name), str(folder))
    _kill_shims(cluster)
    for mount in sorted(cluster.mounts(), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)
    for group in cluster.cgroups():
        for sub in sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                sub.rmdir()
        with contextlib.suppress(OSError):
            group.rmdir()
    shutil.rmtree(cluster.run_dir, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)


def _kill_shims(cluster: Cluster) -> None:
    """containerd's shims (and their containers) outlive containerd: end the ones of this cluster."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue
        if "containerd-shim" in cmdline and str(cluster.containerd_socket) in cmdline:
            with contextlib.suppress(OSError):
                os.kill(int(proc.name), 9)


@contextlib.contextmanager
def running_cluster(folder: Path, ports: dict[str, int] | None = None) -> Iterator[Cluster]:
    """A cluster for the length of a with block, stopped and removed afterwards."""
    cluster = up(folder, ports)
    try:
        yield cluster
    finally:
        down(folder)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("up", "down"):
        print(__doc__, file=sys.stderr)
        return 2
    folder = Path(argv[1]) if len(argv) > 1 else DEFAULT_FOLDER
    try:
        if argv[0] == "up":
            start, timings = time.monotonic(), {}
            cluster = up(folder, timings=timings)
            for name, seconds in timings.items():
                print(f"  {name:<36} {seconds:6.1f} s")
            print(f"cluster up in {time.monotonic() - start:.1f}s: KUBECONFIG={cluster.kubeconfig}")
        else:
            down(folder)
            print(f"cluster in {folder.resolve()} down")
    except ClusterError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
