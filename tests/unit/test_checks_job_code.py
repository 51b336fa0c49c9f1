"""The in-cluster checks Job runs the code it is shipped (a ConfigMap): every module of `components`
the entry imports, however it is imported."""

import sys
from pathlib import Path

from components.kubernetes.checks import ENTRY, module_files
from toolchain.env import ROOT


def test_the_job_gets_every_module_the_checks_import(tmp_path, monkeypatch):
    files = module_files(ENTRY)
    # Imported as `from components.servers.openbao_metrics import ...` and as a package's module.
    assert "components/servers/openbao_metrics.py" in files and "components/vault/checks.py" in files
    # Shipped alone, the entry imports: nothing it needs is left out.
    for path, source in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(source)
    # Without the checkout on the path, as in the pod.
    monkeypatch.setattr(sys, "path", [str(tmp_path), *[p for p in sys.path if Path(p or ".").resolve() != ROOT]])
    for name in [m for m in sys.modules if m == "components" or m.startswith("components.")]:
        monkeypatch.delitem(sys.modules, name)
    __import__(ENTRY)
    assert sys.modules[ENTRY].__file__.startswith(str(tmp_path))


def test_a_module_imported_from_its_package_is_shipped(tmp_path):
    (tmp_path / "components" / "pkg").mkdir(parents=True)
    (tmp_path / "components" / "__init__.py").write_text("")
    (tmp_path / "components" / "pkg" / "__init__.py").write_text("")
    (tmp_path / "components" / "pkg" / "leaf.py").write_text("VALUE = 1\n")
    (tmp_path / "components" / "entry.py").write_text("from components.pkg import leaf\n")
    assert "components/pkg/leaf.py" in module_files("components.entry", root=tmp_path)
