"""What a scheduled root rotation costs an `up`: on a temporary dev stack of the root program whose
root_rotation_period is a minute, a no-op `up` (what every update runs: the checks, the expired users'
reaper) beside the `up` once the minute has passed (the root Rotation and the rotate-root endpoint
replaced too, and each team's connection's: Vault rotates its admin's password in PostgreSQL), in turns.

    .venv/bin/python benchmarks/root_rotation.py [--rounds 2]

Each `up` is a plain `pulumi up` (no refresh, as `make up` adds). Prints each round's two times, the
report's `rotations` after the last rotating `up`, and one JSON line.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.dev_stack import dev_stack  # noqa: E402

PERIOD = 60


def made_at(running) -> int:
    (rotation,) = [r for r in running.stack.export_stack().deployment["resources"]
                   if r["urn"].endswith("::engine-root-rotation")]
    return int(rotation["outputs"]["created_at"])


def timed_up(running) -> tuple[float, dict]:
    start = time.perf_counter()
    result = running.up()
    return time.perf_counter() - start, result.summary.resource_changes


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory() as tmp, dev_stack(Path(tmp), "rootbench", root_rotation_period="1m") as running:
        print(f"{'round':5} {'no-op up s':>10} {'rotating up s':>13}  changes of the rotating up")
        for n in range(1, args.rounds + 1):
            noop, noop_changes = timed_up(running)
            assert set(noop_changes) == {"same", "update"}, noop_changes
            time.sleep(max(0.0, made_at(running) + PERIOD + 1 - time.time()))
            rotating, changes = timed_up(running)
            # Each connection's Rotation and rotate-root endpoint: the platform's and each team's.
            assert changes.get("replace") == 2 * (1 + len(running.config.teams)), changes
            rounds.append({"noop_up_s": round(noop, 1), "rotating_up_s": round(rotating, 1)})
            print(f"{n:5} {noop:10.1f} {rotating:13.1f}  {changes}")
        print("the report's rotations:", json.dumps(running.outputs["checks"]["rotations"]))
    print(json.dumps({"rounds": rounds,
                      "median_noop_up_s": statistics.median(r["noop_up_s"] for r in rounds),
                      "median_rotating_up_s": statistics.median(r["rotating_up_s"] for r in rounds)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
