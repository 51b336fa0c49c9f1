"""Validating rendered Kubernetes manifests against the vendored OpenAPI schemas, strictly.

The schemas (tests/data/kubernetes-openapi.json, made by
toolchain/vendor_k8s_openapi.py from k8s.io/kubernetes) are OpenAPI v3; they
become JSON Schema here with two changes: int-or-string fields take both, and
every object with declared properties refuses unknown ones, as the API
server's strict field validation does (a misspelt field fails, not vanishes).
"""

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from toolchain.env import ROOT

SCHEMAS = ROOT / "tests" / "data" / "kubernetes-openapi.json"


def _strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {k: _strict(v) for k, v in schema.items()}
    if schema.get("format") == "int-or-string":
        return {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    if "properties" in schema and "additionalProperties" not in schema:
        schema["additionalProperties"] = False
    return schema


@lru_cache(maxsize=1)
def _document() -> dict:
    data = json.loads(SCHEMAS.read_text())
    return {"kinds": data["kinds"], "components": {"schemas": _strict(data["schemas"])}}


def schema_errors(manifest: dict) -> list[str]:
    """What is wrong with one manifest, as "path: message" lines (empty when it is valid)."""
    document = _document()
    kind = manifest.get("kind")
    if kind not in document["kinds"]:
        return [f"kind {kind!r} has no vendored schema"]
    schema = {"components": document["components"], "$ref": f"#/components/schemas/{document['kinds'][kind]}"}
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '.'}: {e.message}"
            for e in validator.iter_errors(manifest)]


def load_manifests(folder: Path) -> list[dict]:
    """Every object in the YAML files under folder."""
    return [doc for path in sorted(folder.rglob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]
