"""The test cluster's images: one table, built once per machine into one archive every node holds.

No registry can be pulled from here, so every image the cluster runs is built on this machine from a
Dockerfile of `docker/` and a build context made here, on a Docker engine started for it and removed
after (`docker save` of all of them, one archive, cached per machine under the images cache and keyed
by what goes into it). A containerd of its own imports the archive once into a root folder of its own
(cached beside it: the images' content and unpacked layers); each node's containerd starts from a
copy of that root made of hard links (its databases copied), which takes a second where an import
into three nodes at once took forty. Pods use `imagePullPolicy: Never` (or IfNotPresent: the image is
there).

To add an image, add a row to IMAGES: its role (how manifests and tests name it), a function that
makes (when missing) and returns its build context folder, and its Dockerfile. Its reference is
`dbcreds-<role>:<key>`, the key a digest of the Dockerfile and the context's files, unless the row
says otherwise (OpenBao's and PostgreSQL's are the docker target's, `components.docker.images`).
`image_refs()` gives every reference by role.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from components.docker import images
from components.docker.daemon import DockerEngine
from toolchain.env import toolchain_version

DOCKERFILES = images.DOCKERFILES
KUBERNETES_VERSION = toolchain_version("KUBERNETES_VERSION")


class ImageError(RuntimeError):
    pass


def toolchain_cache() -> Path:
    """The bootstrap's per-user binary cache (toolchain/bootstrap.sh: $cache)."""
    return images.cache_dir().parent


def built_binary(name: str, version_variable: str, binary: str | None = None) -> Path:
    """A binary the bootstrap built into its cache: <cache>/<name>/v<version>/<binary>."""
    path = toolchain_cache() / name / f"v{toolchain_version(version_variable)}" / (binary or name)
    if not path.exists():
        raise ImageError(f"no {path}: `bash toolchain/bootstrap.sh cluster` builds it (make cluster-up does)")
    return path


def pause_context() -> Path:
    """A folder holding Kubernetes' pause (build/pause/linux/pause.c of k8s.io/kubernetes), compiled
    statically with gcc, cached."""
    folder = images.cache_dir() / f"pause-{KUBERNETES_VERSION}"
    out = folder / "pause"
    if out.exists():
        return folder
    module = subprocess.run(["go", "mod", "download", "-json", f"k8s.io/kubernetes@v{KUBERNETES_VERSION}"],
                            capture_output=True, text=True, env={**os.environ, "GOFLAGS": "-mod=mod"})
    if module.returncode != 0:
        raise ImageError(f"the Go module proxy could not serve k8s.io/kubernetes@v{KUBERNETES_VERSION}: "
                         f"{module.stderr.strip()}")
    source = Path(json.loads(module.stdout)["Dir"]) / "build" / "pause" / "linux" / "pause.c"
    folder.mkdir(parents=True, exist_ok=True)
    build = subprocess.run(["gcc", "-Os", "-static", "-o", f"{out}.tmp", str(source),
                            f'-DVERSION="v{KUBERNETES_VERSION}"'], capture_output=True, text=True)
    if build.returncode != 0:
        raise ImageError(f"gcc could not build {source}: {build.stderr.strip()}")
    Path(f"{out}.tmp").rename(out)
    return folder


def binary_context(name: str, version_variable: str) -> Callable[[], Path]:
    """A context folder holding one binary of the bootstrap's cache (hard-linked, or copied)."""
    def make() -> Path:
        binary = built_binary(name, version_variable)
        folder = images.cache_dir() / f"{name}-{binary.parent.name}"
        target = folder / name
        if not target.exists():
            folder.mkdir(parents=True, exist_ok=True)
            try:
                os.link(binary, f"{target}.tmp")
            except OSError:
                shutil.copy2(binary, f"{target}.tmp")
            os.replace(f"{target}.tmp", target)
        return folder
    return make


def _made_by_bootstrap(context: Callable[[], Path], file: str) -> Callable[[], Path]:
    """A context the bootstrap makes (the docker target's): refused, naming what makes it, when missing."""
    def get() -> Path:
        folder = context()
        if not (folder / file).exists():
            raise ImageError(f"no {folder / file}: `bash toolchain/bootstrap.sh cluster` makes it "
                             "(python -m components.docker.images)")
        return folder
    return get


@dataclass(frozen=True)
class ClusterImage:
    role: str
    #: Makes the build context when missing; returns its folder.
    context: Callable[[], Path]
    dockerfile: Path
    #: The image's name:tag when another part of the project fixes it; else dbcreds-<role>:<key>.
    fixed_ref: Callable[[], str] | None = None

    def ref(self) -> str:
        if self.fixed_ref is not None:
            return self.fixed_ref()
        key = hashlib.sha256(self.dockerfile.read_bytes() + context_digest(self.context()).encode()).hexdigest()
        return f"dbcreds-{self.role}:{key[:12]}"


#: Every image the cluster's nodes hold. The roles name them in manifests (addons.py, tests).
IMAGES: tuple[ClusterImage, ...] = (
    ClusterImage("openbao", _made_by_bootstrap(images.openbao_context, "bao"), DOCKERFILES / "openbao.Dockerfile",
                 lambda: images.image_names()["openbao"]),
    ClusterImage("postgres", _made_by_bootstrap(images.postgres_context, "rootfs.tar"), DOCKERFILES / "postgres.Dockerfile",
                 lambda: images.image_names()["postgres"]),
    ClusterImage("python", _made_by_bootstrap(images.python_context, "site-packages"), DOCKERFILES / "python.Dockerfile",
                 lambda: images.image_names()["python"]),
    ClusterImage("pause", pause_context, DOCKERFILES / "pause.Dockerfile"),
    ClusterImage("coredns", binary_context("coredns", "COREDNS_VERSION"), DOCKERFILES / "coredns.Dockerfile"),
    ClusterImage("local-path-provisioner", binary_context("local-path-provisioner", "LOCAL_PATH_PROVISIONER_VERSION"),
                 DOCKERFILES / "local-path-provisioner.Dockerfile"),
)


def image_refs() -> dict[str, str]:
    """Every image's reference, by role."""
    return {image.role: image.ref() for image in IMAGES}


def containerd_ref(ref: str) -> str:
    """A short image reference as containerd names it (docker.io/library/...)."""
    return ref if "/" in ref.split(":", 1)[0] else f"docker.io/library/{ref}"


_DIGESTS = "context-digests.json"


@contextlib.contextmanager
def images_lock():
    """Held while the archive or the containerd root is made or removed: two clusters starting at once
    (the tests' and a developer's) build them once, one after the other, never both at a time."""
    cache = images.cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "cluster-images.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def context_digest(folder: Path) -> str:
    """A digest of a build context's files (names, modes and contents). Each file's content digest is
    remembered by its path, size, inode and modification time, so a large context is read once."""
    memo_path = images.cache_dir() / _DIGESTS
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    changed = False
    total = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        stamp = f"{stat.st_size}:{stat.st_ino}:{stat.st_mtime_ns}"
        entry = memo.get(str(path))
        if entry is None or entry[0] != stamp:
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            entry = memo[str(path)] = [stamp, digest.hexdigest()]
            changed = True
        total.update(f"{path.relative_to(folder)}\0{stat.st_mode & 0o777:o}\0{entry[1]}\n".encode())
    if changed:
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        memo_path.with_suffix(".tmp").write_text(json.dumps(memo))
        memo_path.with_suffix(".tmp").replace(memo_path)
    return total.hexdigest()


def images_root() -> Path:
    """The containerd root holding every image (made, with the archive, when missing)."""
    with images_lock():
        return containerd_root(archive())


def archive() -> Path:
    """Every image of IMAGES in one `docker save` archive, built once per machine (cached, keyed by the
    references and Dockerfiles), on a Docker engine started for it and removed after. An older archive
    of the cluster's is removed when a new one is made. Call it with images_lock() held."""
    refs = image_refs()
    dockerfiles = [image.dockerfile.read_text() for image in IMAGES]
    key = hashlib.sha256(json.dumps([refs, dockerfiles]).encode()).hexdigest()[:12]
    out = images.cache_dir() / f"cluster-images-{key}.tar"
    if out.exists():
        return out
    engine = DockerEngine(images.cache_dir() / f"docker-{key}")
    engine.ensure_running()
    try:
        for image in IMAGES:
            engine.docker("build", "--quiet", "--tag", refs[image.role], "--file", str(image.dockerfile),
                          str(image.context()))
        engine.docker("save", "--output", f"{out}.tmp", *refs.values())
        Path(f"{out}.tmp").rename(out)
    finally:
        engine.remove()
    for old in images.cache_dir().glob("cluster-images-*.tar"):
        if old != out:
            old.unlink(missing_ok=True)
    return out


def containerd_root(archive_path: Path) -> Path:
    """A containerd root folder holding every image of the archive, unpacked, in Kubernetes' namespace:
    made once per archive by a containerd started for it (no CRI, no network) and cached beside the
    archive; an older one is removed when a new one is made. Call it with images_lock() held."""
    key = archive_path.stem.rsplit("-", 1)[1]
    root = images.cache_dir() / f"cluster-containerd-{key}"
    if (root / "complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    run = Path("/run") / f"dbcreds-images-{key}"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True, mode=0o700)
    socket_path = run / "containerd.sock"
    (run / "config.toml").write_text(f"""version = 2
root = "{root}"
state = "{run / 'state'}"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{socket_path}"
[ttrpc]
  address = "{socket_path}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{root / 'opt'}"
""")
    with open(run / "containerd.log", "wb") as log:
        daemon = subprocess.Popen(["containerd", "--config", str(run / "config.toml")], stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=log, start_new_session=True)
    ctr = ["ctr", "--address", str(socket_path), "--namespace", "k8s.io"]
    try:
        deadline = time.monotonic() + 30
        while subprocess.run([*ctr, "version"], capture_output=True).returncode != 0:
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise ImageError(f"containerd for the images did not start: "
                                 f"{(run / 'containerd.log').read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        result = subprocess.run([*ctr, "images", "import", str(archive_path)], capture_output=True, text=True)
        if result.returncode != 0:
            raise ImageError(f"ctr images import {archive_path} failed: {result.stderr.strip()}; containerd's log "
                             f"ends: {(run / 'containerd.log').read_text(errors='replace')[-2000:]}")
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith((f"{run}/", f"{root}/"))), key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True)
        shutil.rmtree(run, ignore_errors=True)
    shutil.rmtree(root / "opt", ignore_errors=True)
    (root / "complete").write_text(f"{archive_path.name}\n")
    for old in images.cache_dir().glob("cluster-containerd-*"):
        if old != root:
            shutil.rmtree(old, ignore_errors=True)
    return root


def clone_root(source: Path, target: Path) -> None:
    """A node's containerd root from the images' root: every file a hard link (content blobs and
    unpacked layers are never written again: containers write to layers of their own), but for the
    databases, which are copied."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    result = subprocess.run(["cp", "-a", "--link", f"{source}/.", str(target)], capture_output=True, text=True)
    if result.returncode != 0:
        raise ImageError(f"copying {source} to {target} failed: {result.stderr.strip()}")
    (target / "complete").unlink(missing_ok=True)
    for database in target.rglob("*.db"):
        copy = database.with_name(database.name + ".copy")
        shutil.copy2(database, copy)
        os.replace(copy, database)
    with contextlib.suppress(FileNotFoundError):
        (target / "opt").rmdir()
