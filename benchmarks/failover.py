"""OpenBao's failover on the local target, and what a cluster costs issuance.

    .venv/bin/python benchmarks/failover.py [--kills 5] [--workers 20] [--seconds 10]

Brings up two temporary stacks of the root program with the dev stack's config
(their own ports and data folders): one with a single OpenBao node, one with
`vault_nodes: 3` (the static seal). Then:
- issuance: `--workers` clients (the stack's `app` AppRole client, each worker
  logged in once) issue, renew and revoke credentials for `--seconds`, through
  the single node, then through the cluster's nodes (each worker on its own
  node: standbys forward to the active one), in turns, twice; the cluster's
  rate as a ratio of the single node's;
- failover, `--kills` times: the same load on the cluster, the active node
  killed (`kill -9`) after 5 s; the seconds from the kill to the first
  credential issued after it, and to a steady rate again (a 1-second window at
  80 % of the rate before), and the failed operations in between; then an `up`
  of the keepers starts the killed node again (it rejoins and unseals itself).
Prints each run, the medians and ranges, and one JSON line of every figure.
"""

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.servers.openbao import node_state  # noqa: E402
from components.vault.checks import revoke  # noqa: E402
from stacks import local_target  # noqa: E402
from tests.support.dev_stack import DevStack, dev_stack, quiet  # noqa: E402
from tests.support.ports import free_port_run  # noqa: E402
from tests.support.vault_load import ClusterLoad, recovery  # noqa: E402
from toolchain.up import keepers  # noqa: E402


def load_on(running: DevStack, workers: int) -> ClusterLoad:
    access = running.outputs["clients"]["app"]
    return ClusterLoad(running.outputs["vault_addrs"], running.ca_file("vault_ca_pem"), access,
                       access["creds_path"], workers=workers)


def rate(running: DevStack, workers: int, seconds: float) -> float:
    """Credentials issued, renewed and revoked per second."""
    load = load_on(running, workers)
    load.start()
    start = time.monotonic()
    time.sleep(seconds)
    load.stop()
    done = [e for e in load.events if e.ok and e.started >= start and e.ended <= start + seconds]
    # The kept leases go back.
    admin = running.admin()
    for held in load.held:
        revoke(admin, held.lease_id)
    return len(done) / seconds


def failover(running: DevStack, workers: int) -> dict:
    load = load_on(running, workers)
    load.start()
    try:
        time.sleep(5)
        victim = next(n for n in local_target.vault_nodes(running.config)
                      if node_state(n.client(timeout=3)) == "active")
        killed_at = time.monotonic()
        os.kill(victim.pid(), signal.SIGKILL)
        deadline = killed_at + 60
        while recovery(load.events, killed_at).steady is None and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(1)
    finally:
        load.stop()
    figures = recovery(load.events, killed_at)
    started = time.monotonic()
    running.stack.up(on_output=quiet, target=keepers(running.stack.export_stack().deployment["resources"]))
    return {"rate_before": figures.rate_before, "first_success_s": figures.first_success, "steady_s": figures.steady,
            "errors": figures.errors, "error_types": figures.error_types,
            "node_back_by_up_s": round(time.monotonic() - started, 1)}


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f} to {max(values):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    results: dict = {"workers": args.workers, "rates": [], "kills": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        with dev_stack(tmp_path / "one", "failover-one") as one, \
                dev_stack(tmp_path / "three", "failover-three", vault_nodes="3", vault_port=str(free_port_run(3)),
                          vault_cluster_port=str(free_port_run(3))) as three:
            for turn in range(2):
                single, cluster = rate(one, args.workers, args.seconds), rate(three, args.workers, args.seconds)
                results["rates"].append({"one_node": single, "three_nodes": cluster, "ratio": cluster / single})
                print(f"issuance, turn {turn + 1}: 1 node {single:.1f}/s, 3 nodes {cluster:.1f}/s, "
                      f"ratio {cluster / single:.2f}", flush=True)
            for kill in range(args.kills):
                figures = failover(three, args.workers)
                results["kills"].append(figures)
                print(f"kill {kill + 1}: first issuance {figures['first_success_s']:.2f} s, steady "
                      f"{figures['steady_s']:.2f} s, {figures['errors']} failed operations "
                      f"({figures['error_types']}), rate before {figures['rate_before']:.0f}/s; the node back by an "
                      f"up of the keepers in {figures['node_back_by_up_s']} s", flush=True)
    kills = [k for k in results["kills"] if k["steady_s"] is not None]
    print(f"\nissuance through 3 nodes / 1 node: {spread([r['ratio'] for r in results['rates']])}")
    if kills:
        print(f"after the active node is killed ({len(kills)} of {args.kills} recovered): first issuance "
              f"{spread([k['first_success_s'] for k in kills])} s, steady rate "
              f"{spread([k['steady_s'] for k in kills])} s, failed operations {spread([k['errors'] for k in kills])}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
