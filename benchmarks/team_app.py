"""The team app's pods (examples/team-app): seconds from a pod's creation to the app's first successful
query, and from a pod's deletion to its database user gone.

    .venv/bin/python benchmarks/team_app.py [--runs 5] [--kubeconfig PATH]

Starts a 1-node cluster of its own (toolchain/cluster/) unless given a kubeconfig, brings up the
platform (the root program with the k8s stack file's config, its own namespace) and the team program
(one replica; the checkout's virtualenv), then `--runs` times:
- creation: the Deployment scaled to 2 (t0 just before `kubectl scale`); the new pod's first `query`
  event (its `at`, from the app's log: the node's clock is this machine's). Between them: scheduling,
  the sandbox, the agent's login and first read, its startup probe, the app's start (Python, psycopg)
  and its first connect with verify-full;
- deletion: the Deployment scaled back to 1 (t0 just before; the ReplicaSet deletes the newer pod),
  the database's users read as the superuser every 0.1 s until the deleted pod's are gone. Between
  them: the agent's preStop hook (`bao token revoke -self`), Vault revoking the token's lease, the
  database plugin's revocation SQL (its sessions ended, the user dropped).
Prints each run (with where the start went: the agent's credentials written, the app's process
started), the medians and ranges, and one JSON line of every figure. Aim: 10 s or less each.
"""

import argparse
import datetime
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support import team_app  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402
from toolchain.cluster import cluster as cluster_support  # noqa: E402
from toolchain.env import ROOT  # noqa: E402


def first_query(app: team_app.TeamApp, pod: str) -> float:
    return wait_for(lambda: next((e["at"] for e in app.events(pod) if e["event"] == "query"), None),
                    f"a query by {pod}", timeout=120, every=0.1)


def agent_rendered(app: team_app.TeamApp, pod: str) -> float:
    """When the agent first wrote the credentials (its log's timestamp, milliseconds)."""
    for line in app.agent_log(pod).splitlines():
        if "rendered" in line and "db.json" in line:
            return datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()
    raise RuntimeError(f"the agent of {pod} says it rendered nothing")


def ready(app: team_app.TeamApp, pod: str) -> bool:
    status = json.loads(app.kubectl("get", "pod", pod, "--output", "json").stdout)["status"]
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))


def run(app: team_app.TeamApp, deployment: str) -> dict[str, float]:
    before = set(app.pods(running=False))
    started = time.time()
    app.kubectl("scale", "deployment", deployment, "--replicas=2")
    pod = wait_for(lambda: next(iter(set(app.pods(running=False)) - before), None), "a new pod", every=0.05)
    created = first_query(app, pod) - started
    rendered = agent_rendered(app, pod) - started
    app_started = next(e["at"] for e in app.events(pod) if e["event"] == "started") - started
    wait_for(lambda: ready(app, pod), f"{pod} ready", timeout=60)
    users = set(app.users(pod)) & set(app.dynamic_users())
    deleted_at = time.time()
    app.kubectl("scale", "deployment", deployment, "--replicas=1")
    gone = wait_for(lambda: set(app.pods(running=False)) - set(app.pods()), "a pod deleted", every=0.05)
    if pod not in gone:
        raise RuntimeError(f"the ReplicaSet deleted {sorted(gone)}, not the new pod {pod}")
    wait_for(lambda: not users & set(app.dynamic_users()), f"{pod}'s users gone", timeout=60, every=0.1)
    dropped = time.time() - deleted_at
    wait_for(lambda: pod not in app.pods(running=False), f"{pod} gone", timeout=60)
    return {"pod": pod, "creation_to_first_query_s": round(created, 2), "deletion_to_user_gone_s": round(dropped, 2),
            # Where the start goes: the agent's credentials written, the app's process started.
            "credentials_rendered_s": round(rendered, 2), "app_started_s": round(app_started, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--kubeconfig", help="a running cluster's (default: start a 1-node cluster of its own)")
    args = parser.parse_args()
    folder = None
    if args.kubeconfig:
        kubeconfig = Path(args.kubeconfig).resolve()
    else:
        folder = ROOT / ".data" / "tests" / f"bench-cluster-{uuid.uuid4().hex[:6]}"
        kubeconfig = cluster_support.up(folder, 1).kubeconfig
    namespace = f"team-app-{uuid.uuid4().hex[:6]}"
    runs = []
    try:
        with tempfile.TemporaryDirectory(prefix="team-app-bench-") as tmp:
            tmp_path = Path(tmp)
            with team_app.platform_stack(kubeconfig, tmp_path / "platform", namespace) as platform:
                with team_app.team_stack(platform, tmp_path / "team", namespace, replicas="1") as app:
                    wait_for(lambda: len(app.pods()) == 1 and app.users(app.pods()[0]), "the first pod's query",
                             timeout=120)
                    for index in range(args.runs):
                        runs.append(run(app, app.outputs["deployment"]))
                        print(f"run {index + 1}: {runs[-1]}", flush=True)
    finally:
        if folder is not None:
            cluster_support.down(folder)
    for key in ("creation_to_first_query_s", "credentials_rendered_s", "app_started_s", "deletion_to_user_gone_s"):
        values = [r[key] for r in runs]
        print(f"{key}: median {statistics.median(values):.2f} (range {min(values):.2f} to {max(values):.2f}) "
              f"over {len(values)} runs")
    print(json.dumps({"runs": runs}))


if __name__ == "__main__":
    main()
