"""tests/conftest.py: a skip for a reason not on tests/allowed_skips.txt fails the run."""

import os
import subprocess
import sys

from toolchain.env import ROOT


def run_pytest(tmp_path, reason: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_skips.py").write_text(
        "import pytest\n\ndef test_passes():\n    assert True\n\n"
        f"def test_skips():\n    pytest.skip({reason!r})\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-q", "test_skips.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)


def test_a_skip_for_an_allowed_reason_passes(tmp_path):
    result = run_pytest(tmp_path, "no cockroach binary: put one on PATH")
    assert result.returncode == 0, result.stdout
    assert "1 skipped: 1 for an allowed reason, 0 not" in result.stdout


def test_a_skip_for_any_other_reason_fails_the_run(tmp_path):
    result = run_pytest(tmp_path, "no kube-apiserver")
    assert result.returncode == 1, result.stdout
    assert "NOT ALLOWED: test_skips.py::test_skips: Skipped: no kube-apiserver" in result.stdout
