"""The post-deploy checks as a program, for a pod of the in-cluster checks Job
(`components.kubernetes.checks.InClusterChecks`): reads a `CheckPlan` as JSON, runs the checks, and
prints the report (no secrets) as its last line; exits 1 when a check failed.

    python3 -m components.vault.checks_job /plan/plan.json
"""

import json
import sys
from pathlib import Path

from components.vault.check_plan import CheckPlan
from components.vault.checks import run_checks


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    report = run_checks(CheckPlan.from_dict(json.loads(Path(argv[0]).read_text())))
    print(json.dumps(report.as_dict()), flush=True)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
