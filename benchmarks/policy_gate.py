"""The policy gate's cost: `pulumi preview` of the dev stack with and without
`--policy-pack policies`, on a stack of the root program that is up (the case of CI and of `make policy`
on a running stack), and from nothing.

    .venv/bin/python benchmarks/policy_gate.py [--runs 3] [--baseline DIR]

Prints the median of each, in seconds. `--baseline` also times another version of the pack in the
same runs (a folder holding its `policies/`, e.g. `git archive <commit> policies | tar -x -C DIR`
with DIR/.venv a link to this checkout's), to show what a change of the rules costs.
"""

import argparse
import json
import re
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


def config_for(pack: str, config: dict, folder: Path) -> str:
    """The stack's gate config as a file for pack: only the policies that pack has (an older pack
    refuses a config naming a policy it does not know)."""
    names = set(re.findall(r'_(?:stack_)?policy\(\s*"([a-z0-9-]+)"', (Path(pack) / "pack.py").read_text()))
    path = folder / f"gate-{abs(hash(pack))}.json"
    path.write_text(json.dumps({name: value for name, value in config.items() if name in names}))
    return str(path)


def compare(stack: auto.Stack, pack_configs: dict[str, str], runs: int, packs: dict[str, str]) -> dict[str, float]:
    """The plain preview's median, and the gated preview's with each pack."""
    times = {"plain": median_seconds(lambda: stack.preview(on_output=quiet), runs)}
    for name, pack in packs.items():
        times[name] = median_seconds(lambda: stack.preview(on_output=quiet, policy_packs=[pack],
                                                           policy_pack_configs=[pack_configs[name]]), runs)
    return times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="a folder holding another version's policies/")
    args = parser.parse_args()
    runs = args.runs
    packs = {"with the gate": PACK}
    if args.baseline:
        packs["with the baseline"] = str(args.baseline.resolve() / "policies")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        with dev_stack(tmp_path / "up", "gate-bench") as running:
            config = policy_pack_config(running.config, running.stack.name)
            pack_configs = {name: config_for(pack, config, tmp_path) for name, pack in packs.items()}
            up = compare(running.stack, pack_configs, runs, packs)
            resources = len(running.stack.export_stack().deployment["resources"])
        (tmp_path / "fresh").mkdir()
        with temporary_stack(root_program(tmp_path / "fresh"), tmp_path / "fresh", "gate-fresh") as stack:
            stack.set_all_config({**stack_file_config("dev"), **local_servers_config(tmp_path / "fresh-data")})
            fresh = compare(stack, pack_configs, runs, packs)
    print(f"{'dev stack':24} {'preview s':>10} " + " ".join(f"{name + ' s':>20}" for name in packs)
          + f" {'gate costs s':>13}")
    for name, times in ((f"up ({resources} resources)", up), ("from nothing", fresh)):
        print(f"{name:24} {times['plain']:10.1f} " + " ".join(f"{times[p]:20.1f}" for p in packs)
              + f" {times['with the gate'] - times['plain']:13.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
