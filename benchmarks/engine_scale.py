"""How `pulumi up`, `pulumi preview` and a no-op `up` grow with the number of dynamic roles.

    .venv/bin/python benchmarks/engine_scale.py [--sizes 3 30 100]

For each size, a fresh stack of the platform program (real engine, real
OpenBao and PostgreSQL) with that many grant specs, each a group role with its
privileges and a dynamic role in Vault; prints the first up, a preview and a
no-op up in seconds, and the seconds per role above the smallest size. The
stacks have no clients, so the post-deploy checks run only their stack-wide
checks (the clients' share is in benchmarks/issuance.py).
"""

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

from pulumi import automation as auto

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.automation import (  # noqa: E402
    assert_only_the_checks_change,
    local_servers_config,
    root_program,
    temporary_stack,
)
from tests.support.processes import remove_data_dir  # noqa: E402
from toolchain.env import ROOT  # noqa: E402


def roles(count: int) -> dict:
    return {f"r{i:03d}": {"privileges": ["SELECT"], "schemas": ["public"], "default_ttl": "1h", "max_ttl": "2h"}
            for i in range(count)}


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def measure(count: int) -> dict:
    data_dir = ROOT / ".data" / "bench" / f"scale-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        with temporary_stack(root_program(tmp_path), tmp_path, f"scale{count}") as stack:
            stack.set_config("dbcreds:roles", auto.ConfigValue(json.dumps(roles(count))), path=False)
            stack.set_all_config(local_servers_config(data_dir))
            quiet = dict(on_output=lambda _: None)
            result = {
                "roles": count,
                "up": timed(lambda: stack.up(**quiet)),
                "preview": timed(lambda: assert_only_the_checks_change(stack)),
                "no-op up": timed(lambda: stack.up(**quiet)),
            }
            result["resources"] = len(stack.export_stack().deployment["resources"])
    remove_data_dir(data_dir)
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 30, 100])
    sizes = parser.parse_args().sizes
    results = [measure(n) for n in sizes]
    print(f"{'roles':>6} {'resources':>9} {'up s':>7} {'preview s':>9} {'no-op up s':>10}")
    for r in results:
        print(f"{r['roles']:>6} {r['resources']:>9} {r['up']:>7.1f} {r['preview']:>9.1f} {r['no-op up']:>10.1f}")
    base = results[0]
    for r in results[1:]:
        extra = r["roles"] - base["roles"]
        print(f"per role above {base['roles']} (at {r['roles']}): up {1000 * (r['up'] - base['up']) / extra:.0f} ms, "
              f"preview {1000 * (r['preview'] - base['preview']) / extra:.0f} ms, "
              f"no-op up {1000 * (r['no-op up'] - base['no-op up']) / extra:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
