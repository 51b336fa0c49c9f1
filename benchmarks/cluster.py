"""Figures of the multi-node test cluster (docs/cluster.md): `make cluster-up` cold and warm for 1 and 3
nodes, the memory it holds once up, and `make cluster-down`.

    .venv/bin/python benchmarks/cluster.py [--nodes 1 3] [--no-cold]

Cold: the cluster's image archive and the containerd root made from it are not cached (removed first),
so `make cluster-up` starts a Docker engine, builds every image of toolchain/cluster/images.py,
saves them and imports them once (the Go binaries and the docker target's contexts are the
bootstrap's: cached). Warm: everything cached. Each run uses a folder
of its own under .data/bench and ends with `make cluster-down`. Memory: the proportional set size (PSS)
of every process of the cluster (control plane, each node's containerd, kubelet, kube-proxy, shims,
the pods' processes), 10 s after `make cluster-up` returned, and how much the machine's available
memory dropped.
"""

import argparse
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.docker import images  # noqa: E402
from toolchain.cluster import cluster as cluster_support  # noqa: E402
from toolchain.cluster.images import images_lock  # noqa: E402
from toolchain.cluster.net import Layout  # noqa: E402
from toolchain.env import ROOT  # noqa: E402


def mem_available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def pss_kib(pid: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cluster_memory(cluster: cluster_support.Cluster) -> tuple[int, dict[str, int]]:
    """The PSS of every process of the cluster, in KiB: total, and by program."""
    by_program: dict[str, int] = {}
    for entry in cluster_support._processes_of(cluster.folder, Layout(cluster.layout.slot, 1)):
        pid, command = entry.split(": ", 1)
        program = Path(command.split()[0]).name
        if program == "nsenter":
            program = Path(command.split()[3]).name
        by_program[program] = by_program.get(program, 0) + pss_kib(pid)
    return sum(by_program.values()), by_program


def run(nodes: int, cold: bool) -> dict:
    folder = ROOT / ".data" / "bench" / f"cluster-{uuid.uuid4().hex[:6]}"
    if cold:
        with images_lock():
            for archive in images.cache_dir().glob("cluster-images-*.tar"):
                archive.unlink()
            for root in images.cache_dir().glob("cluster-containerd-*"):
                shutil.rmtree(root)
    available = mem_available_kib()
    start = time.monotonic()
    up = subprocess.run(["make", "-s", "-C", str(ROOT), "cluster-up", f"NODES={nodes}", f"CLUSTER_DIR={folder}"],
                        capture_output=True, text=True)
    up_seconds = time.monotonic() - start
    if up.returncode != 0:
        raise SystemExit(f"make cluster-up failed:\n{up.stderr[-3000:]}")
    phases = [line for line in up.stdout.splitlines() if line.startswith("  ")]
    try:
        time.sleep(10)
        cluster = cluster_support.Cluster(folder.resolve())
        total, by_program = cluster_memory(cluster)
        dropped = available - mem_available_kib()
    finally:
        start = time.monotonic()
        subprocess.run(["make", "-s", "-C", str(ROOT), "cluster-down", f"CLUSTER_DIR={folder}"], check=True,
                       capture_output=True)
        down_seconds = time.monotonic() - start
    return {"nodes": nodes, "cold": cold, "up": up_seconds, "down": down_seconds, "pss": total,
            "by_program": by_program, "dropped": dropped, "phases": phases}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--no-cold", action="store_true", help="warm runs only")
    args = parser.parse_args()
    results = []
    for nodes in args.nodes:
        for cold in ([] if args.no_cold else [True]) + [False]:
            result = run(nodes, cold)
            results.append(result)
            print(f"{nodes} node(s), {'cold' if cold else 'warm'}: make cluster-up {result['up']:.1f} s, "
                  f"make cluster-down {result['down']:.1f} s; memory: PSS {result['pss'] / 1024:.0f} MiB, "
                  f"available memory down {result['dropped'] / 1024:.0f} MiB", flush=True)
            for line in result["phases"]:
                print(f"    {line.strip()}")
            top = sorted(result["by_program"].items(), key=lambda kv: -kv[1])
            print("    PSS by program: " + ", ".join(f"{name} {kib / 1024:.0f} MiB" for name, kib in top))
    print("\n| nodes | run | make cluster-up | memory (PSS) | make cluster-down |\n| ---: | --- | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['nodes']} | {'cold' if r['cold'] else 'warm'} | {r['up']:.1f} s | {r['pss'] / 1024:.0f} MiB | "
              f"{r['down']:.1f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
