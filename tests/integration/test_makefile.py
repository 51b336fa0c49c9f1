"""The Makefile fails a target when its set-up fails: a crash of toolchain/env.py stops every target
before any pulumi command runs (the targets themselves run for real in test_make_up_anywhere.py)."""

import subprocess

import pytest

from tests.integration.test_make_up_anywhere import copy_checkout

# Each target, and the prerequisites make is told not to rebuild (they bootstrap, and pass here).
TARGETS = {"up": "bootstrap-stack", "preview": "bootstrap-stack", "down": "bootstrap-stack", "drift": "bootstrap-stack",
           "rotate-audit": "bootstrap-stack", "backup": "bootstrap-stack", "restore": "bootstrap-stack",
           "policy": "bootstrap-all", "test": "bootstrap-all", "unit": "bootstrap", "env": None}


@pytest.fixture(scope="module")
def broken_checkout(tmp_path_factory):
    checkout = tmp_path_factory.mktemp("broken-env")
    copy_checkout(checkout)
    # Its functions import fine; only what the Makefile runs, its main, crashes.
    env_py = checkout / "toolchain" / "env.py"
    env_py.write_text(env_py.read_text().replace(
        "def main() -> None:\n", 'def main() -> None:\n    raise SystemExit("env.py crashed on purpose")\n', 1))
    return checkout


@pytest.mark.parametrize("target", TARGETS)
def test_a_crash_of_env_py_fails_the_target(broken_checkout, target):
    skip = ["-o", TARGETS[target]] if TARGETS[target] else []
    result = subprocess.run(["make", *skip, target, "STACK=dev"], cwd=broken_checkout, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0, result.stdout
    assert "env.py crashed on purpose" in result.stderr
    # Nothing after the set-up ran: no backend, salt or state was made.
    assert not (broken_checkout / ".pulumi").exists()
