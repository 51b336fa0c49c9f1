"""Writes tests/data/kubernetes-openapi.json: the Kubernetes OpenAPI v3 schemas of the kinds the
kubernetes target renders, and every schema they reference.

The schemas come from the k8s.io/kubernetes Go module (api/openapi-spec/v3),
served by the Go module proxy; the test data keeps only what the tests need
(a few hundred KB instead of 11 MB). Re-run after changing the version or the
kinds:

    python3 -m toolchain.vendor_k8s_openapi
"""

import json
import os
import subprocess
from pathlib import Path

from toolchain.env import ROOT

VERSION = "v1.34.2"
#: kind -> (spec file, schema name)
KINDS = {
    "Namespace": ("api__v1_openapi.json", "io.k8s.api.core.v1.Namespace"),
    "Secret": ("api__v1_openapi.json", "io.k8s.api.core.v1.Secret"),
    "ConfigMap": ("api__v1_openapi.json", "io.k8s.api.core.v1.ConfigMap"),
    "Service": ("api__v1_openapi.json", "io.k8s.api.core.v1.Service"),
    "StatefulSet": ("apis__apps__v1_openapi.json", "io.k8s.api.apps.v1.StatefulSet"),
    "PodDisruptionBudget": ("apis__policy__v1_openapi.json", "io.k8s.api.policy.v1.PodDisruptionBudget"),
    "NetworkPolicy": ("apis__networking.k8s.io__v1_openapi.json", "io.k8s.api.networking.v1.NetworkPolicy"),
}
OUT = ROOT / "tests" / "data" / "kubernetes-openapi.json"


def module_dir() -> Path:
    # From the module proxy only, never the repository itself.
    proxy = subprocess.run(["go", "env", "GOPROXY"], capture_output=True, text=True, check=True).stdout.strip()
    answer = subprocess.run(["go", "mod", "download", "-json", f"k8s.io/kubernetes@{VERSION}"],
                            capture_output=True, text=True, check=True, cwd="/tmp",
                            env={**os.environ, "GOPROXY": proxy.removesuffix(",direct")})
    return Path(json.loads(answer.stdout)["Dir"]) / "api" / "openapi-spec" / "v3"


def references(schema) -> set[str]:
    found = set()
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            found.add(ref.rsplit("/", 1)[1])
        for value in schema.values():
            found |= references(value)
    elif isinstance(schema, list):
        for value in schema:
            found |= references(value)
    return found


def main() -> None:
    spec_dir = module_dir()
    all_schemas = {}
    for file, _ in KINDS.values():
        all_schemas.update(json.loads((spec_dir / file).read_text())["components"]["schemas"])
    wanted, todo = {}, [name for _, name in KINDS.values()]
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted[name] = all_schemas[name]
        todo += sorted(references(wanted[name]) - set(wanted))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"source": f"k8s.io/kubernetes@{VERSION} api/openapi-spec/v3",
                               "kinds": {kind: name for kind, (_, name) in KINDS.items()},
                               "schemas": dict(sorted(wanted.items()))}, indent=1, sort_keys=False) + "\n")
    print(f"{OUT.relative_to(ROOT)}: {len(wanted)} schemas, {OUT.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
