"""The components' floors: each module imports only from floors below its own, or from its own area
(a folder, or the pure modules at the bottom). A target never imports another target, nor the Vault
layer a target. Below them all, nothing of the product imports the tests."""

import ast
import sys
from pathlib import Path

from toolchain.env import ROOT

#: Each area and its floor; the area of a module is its folder under components/, or "pure" for the
#: modules at the top of components/ (unless listed).
FLOORS = {
    "pure": 0,        # SQL, dialects, grant specs, the interfaces every target gives, certificates
    "servers": 1,     # how each server is run and reached, whatever target runs it
    "dynamic": 2,     # the database's roles, an external Vault's audit devices
    "local": 3, "docker": 3, "kubernetes": 3, "external": 3,  # the targets
    "vault": 3,       # the Vault layer, the same on every target
    "migration": 4,   # an app's move to dynamic credentials: its stages, their resource, the component
}
#: Modules at the top of components/ that are not pure.
TOP_LEVEL_AREAS = {"external": "external"}


def area(module: str) -> str:
    parts = module.split(".")[1:]
    if len(parts) > 1:
        return parts[0]
    return TOP_LEVEL_AREAS.get(parts[0], "pure")


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("components"):
            found |= ({f"components.{a.name}" for a in node.names} if node.module == "components" else {node.module})
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("components")}
    return found


def test_imports_only_go_down_the_floors():
    wrong = []
    for path in sorted((ROOT / "components").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        if module == "components":
            continue
        for imported in imports(path):
            here, there = area(module), area(imported)
            if here != there and FLOORS[there] >= FLOORS[here]:
                wrong.append(f"{module} ({here}, floor {FLOORS[here]}) imports {imported} "
                             f"({there}, floor {FLOORS[there]})")
    assert wrong == []


def test_every_area_has_a_floor():
    folders = {p.name for p in (ROOT / "components").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders | {"pure", *TOP_LEVEL_AREAS.values()} == set(FLOORS)


def top_level_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
    return found


def test_the_product_never_imports_the_tests():
    product = [ROOT / "__main__.py", *[p for folder in ("components", "stacks", "policies", "toolchain")
                                      for p in (ROOT / folder).rglob("*.py")]]
    assert [str(p.relative_to(ROOT)) for p in product if "tests" in top_level_imports(p)] == []


def test_the_cluster_network_check_needs_only_the_standard_library():
    # `make cluster-up` checks NODES with the machine's python3, before the virtualenv exists.
    for path in (ROOT / "toolchain" / "__init__.py", ROOT / "toolchain" / "cluster" / "__init__.py",
                 ROOT / "toolchain" / "cluster" / "net.py"):
        assert top_level_imports(path) <= set(sys.stdlib_module_names), path
