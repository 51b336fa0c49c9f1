"""What renewing every certificate costs an `up`: on a temporary dev stack of the root program (dev's
reader role and client alone, as tests/integration/test_cert_renewal.py runs it) whose servers'
certificates live an hour and the intermediate two, with windows that put them inside them five
seconds after they are issued (`cert_renew_before: 3595s`, `intermediate_renew_before: 2h`), in turns:

- the `up` that renews them (OpenBao's listener, pulumi-tls: OpenBao restarts and is unsealed; Vault's
  PKI intermediate; the database's certificate from Vault's PKI, the old one revoked, PostgreSQL
  reloading), then the windows back to their default (a tenth of the lifetime: none is due) by an
  untimed `up`,
- a no-op `up`, then the windows set again by an untimed `up`.

Then the `up` that rotates root, as benchmarks/root_rotation.py makes it due (its `made_at` and
`PERIOD`, imported): `root_rotation_period: 1m` set by an untimed `up`, the minute waited out, then the
`up` that replaces the root Rotation and rotate-root (Vault rotates its admin's password in PostgreSQL).
Every timed `up` runs with refresh, as `make up` runs it (Vault's PKI decides at a refresh).

    .venv/bin/python benchmarks/cert_renewal.py [--runs 3]

Prints each run's times and changes, then one JSON line with the medians.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.test_cert_renewal import DATABASE, SMALL, WINDOW, WINDOWS, in_state  # noqa: E402
from tests.support.dev_stack import dev_stack  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from root_rotation import PERIOD, made_at  # noqa: E402


def timed_up(running) -> tuple[float, dict]:
    start = time.perf_counter()
    result = running.up(refresh=True)
    return time.perf_counter() - start, result.summary.resource_changes


def set_windows(running, on: bool) -> None:
    for field in ("cert_renew_before", "intermediate_renew_before"):
        running.set_config(field, WINDOWS[field] if on else "")
    running.up()


def rotating_up(running) -> tuple[float, dict]:
    """The `up` once the root credential's period (a minute) has passed."""
    time.sleep(max(0.0, made_at(running) + PERIOD + 1 - time.time()))
    seconds, changes = timed_up(running)
    assert changes.get("replace") == 2, changes  # the root Rotation and rotate-root
    return seconds, changes


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp, dev_stack(Path(tmp), "certbench", **SMALL, **WINDOWS) as running:
        print(f"{'run':3} {'renewing up s':>13} {'no-op up s':>10}  changes of the renewing up", flush=True)
        for n in range(1, args.runs + 1):
            # Inside the database certificate's window (Vault's PKI: 5 s after it was issued); pulumi-tls's
            # windows are as long as their certificates' lives.
            issued = in_state(running)[DATABASE]
            time.sleep(max(0.0, issued.not_valid_after_utc.timestamp() - WINDOW - time.time() + 1))
            renewing, changes = timed_up(running)
            assert in_state(running)[DATABASE].serial_number != issued.serial_number, "not renewed"
            assert changes.get("replace", 0) >= 3, changes
            set_windows(running, on=False)
            noop, noop_changes = timed_up(running)
            assert not noop_changes.get("replace") and not noop_changes.get("create"), noop_changes
            runs.append({"renewing_up_s": round(renewing, 1), "noop_up_s": round(noop, 1)})
            print(f"{n:3} {renewing:13.1f} {noop:10.1f}  {changes}", flush=True)
            if n < args.runs:
                set_windows(running, on=True)
        resources = len(running.stack.export_stack().deployment["resources"])
        running.set_config("root_rotation_period", f"{PERIOD}s")
        running.up()
        rotating, changes = rotating_up(running)
        print(f"root-rotating up s {rotating:.1f}  {changes}", flush=True)
    print(json.dumps({"resources": resources, "runs": runs,
                      "median_renewing_up_s": statistics.median(r["renewing_up_s"] for r in runs),
                      "median_noop_up_s": statistics.median(r["noop_up_s"] for r in runs),
                      "root_rotating_up_s": round(rotating, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
