"""Times `pulumi preview` of each stack file (dev, staging, prod) from nothing, as CI runs it.

    .venv/bin/python benchmarks/stack_previews.py

Each preview runs on a fresh stack of a temporary file backend with the stack
file's config; local stacks get free ports and a temporary data folder (as in
tests/integration/test_stacks_and_kubernetes.py), prod renders into a temporary folder.
"""

import sys
import tempfile
import time
from pathlib import Path

from pulumi import automation as auto

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.automation import local_servers_config, root_program, stack_file_config, temporary_stack  # noqa: E402

STACKS = ("dev", "staging", "prod")


def preview_seconds(name: str) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        with temporary_stack(root_program(tmp_path), tmp_path, name) as stack:
            config = stack_file_config(name)
            stack.set_all_config(config)
            if "dbcreds:target" not in config:
                stack.set_all_config(local_servers_config(tmp_path / "data"))
            else:
                stack.set_config("dbcreds:k8s_render_dir", auto.ConfigValue(str(tmp_path / "manifests")))
            start = time.perf_counter()
            result = stack.preview(on_output=lambda _: None)
            return time.perf_counter() - start, result.change_summary.get("create", 0)


def main() -> int:
    print(f"{'stack':8} {'preview s':>9} {'to create':>9}")
    for name in STACKS:
        seconds, creates = preview_seconds(name)
        print(f"{name:8} {seconds:9.1f} {creates:9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
