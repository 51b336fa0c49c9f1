"""The policy gate's cost: `pulumi preview` of the dev stack with and without
`--policy-pack policies`, on a stack of the root program that is up (the case of CI and of `make policy`
on a running stack), and from nothing.

    .venv/bin/python benchmarks/policy_gate.py [--runs 3]

Prints the median of each, in seconds.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi import automation as auto  # noqa: E402

from stacks.config import policy_pack_config  # noqa: E402
from tests.automation import local_servers_config, root_program, stack_file_config, temporary_stack  # noqa: E402
from tests.support.dev_stack import dev_stack, quiet  # noqa: E402
from toolchain.env import ROOT  # noqa: E402

PACK = str(ROOT / "policies")


def median_seconds(run, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare(stack: auto.Stack, pack_config: Path, runs: int) -> tuple[float, float]:
    plain = median_seconds(lambda: stack.preview(on_output=quiet), runs)
    gated = median_seconds(lambda: stack.preview(on_output=quiet, policy_packs=[PACK],
                                                 policy_pack_configs=[str(pack_config)]), runs)
    return plain, gated


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        with dev_stack(tmp_path / "up", "gate-bench") as running:
            pack_config = tmp_path / "gate.json"
            pack_config.write_text(json.dumps(policy_pack_config(running.config, running.stack.name)))
            up_plain, up_gated = compare(running.stack, pack_config, runs)
            resources = len(running.stack.export_stack().deployment["resources"])
        (tmp_path / "fresh").mkdir()
        with temporary_stack(root_program(tmp_path / "fresh"), tmp_path / "fresh", "gate-fresh") as stack:
            stack.set_all_config({**stack_file_config("dev"), **local_servers_config(tmp_path / "fresh-data")})
            fresh_plain, fresh_gated = compare(stack, pack_config, runs)
    print(f"{'dev stack':24} {'preview s':>10} {'with the gate s':>16} {'gate costs s':>13}")
    for name, plain, gated in ((f"up ({resources} resources)", up_plain, up_gated), ("from nothing", fresh_plain, fresh_gated)):
        print(f"{name:24} {plain:10.1f} {gated:16.1f} {gated - plain:13.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
