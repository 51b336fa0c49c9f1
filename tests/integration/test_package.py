"""The components install as a package: built into a wheel, installed elsewhere, imported from there."""

import shutil
import subprocess
import sys
import zipfile

from toolchain.env import ROOT

import components


def test_wheel_installs_and_imports_outside_the_checkout(tmp_path):
    # Built from a copy: setuptools leaves build/ and *.egg-info beside the sources.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "components", source / "components", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "--wheel-dir", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("pulumi_dbcreds-*.whl")
    assert wheel.name.startswith(f"pulumi_dbcreds-{components.__version__}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    # Every module of the package, its subpackages' too.
    modules = {str(f.relative_to(ROOT)) for f in (ROOT / "components").rglob("*.py") if "__pycache__" not in f.parts}
    assert {"components/docker/postgres.py", "components/local/providers/openbao_server.py"} <= modules
    assert modules | {"components/py.typed"} <= names
    assert not any(n.startswith(("tests/", "stacks/", "policies/")) for n in names)

    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target",
                              str(target), str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    # From another folder, with only the installed copy of the package on the path (the virtualenv
    # supplies its dependencies).
    probe = subprocess.run(
        [sys.executable, "-c", "import components, components.local.postgres_server as p, components.docker.postgres; "
                               "print(components.__file__); print(p.PostgresServer.__doc__.splitlines()[0])"],
        cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
    location, doc = probe.stdout.splitlines()
    assert location == str(target / "components" / "__init__.py")
    assert doc.startswith("PostgreSQL 15 on 127.0.0.1")
