"""The root program (`__main__.py`) with the dev stack file's config, under Pulumi's mocks: what it
composes, quickly. tests/integration/test_dev_stack.py runs the same program for real."""

import json
import runpy
from collections import Counter

import pulumi
import yaml

from components.postgres_sql import creation_statements
from components.vault_policies import client_policy
from tests.unit.graph import registered, unwrap
from toolchain.env import ROOT


def dev_config() -> dict[str, str]:
    values = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in values.items()}


def test_the_dev_stack_composes_servers_engine_clients_and_checks(monitor, monkeypatch):
    monkeypatch.chdir(ROOT)
    pulumi.runtime.set_all_config(dev_config())

    @pulumi.runtime.test
    def program():
        runpy.run_path(str(ROOT / "__main__.py"))

    program()
    types = Counter(u.split("::")[2].rsplit("$", 1)[-1] for u in monitor.get_registered_resources())
    assert {t: n for t, n in types.items() if t.startswith("vault:")} == {
        "vault:index/mount:Mount": 1,
        "vault:database/secretBackendConnection:SecretBackendConnection": 1,
        "vault:generic/endpoint:Endpoint": 1,
        "vault:database/secretBackendRole:SecretBackendRole": 2,
        "vault:database/secretBackendStaticRole:SecretBackendStaticRole": 1,
        "vault:index/authBackend:AuthBackend": 1,
        "vault:index/policy:Policy": 2,
        "vault:appRole/authBackendRole:AuthBackendRole": 2,
        "vault:appRole/authBackendRoleSecretId:AuthBackendRoleSecretId": 2,
    }
    roles = registered(monitor, "vault:database/secretBackendRole:SecretBackendRole")
    assert roles["engine-role-app"]["creationStatements"] == creation_statements("dbcreds_group_app")
    assert (roles["engine-role-app"]["defaultTtl"], roles["engine-role-app"]["maxTtl"]) == (3600, 8 * 3600)
    policies = registered(monitor, "vault:index/policy:Policy")
    assert policies["reader-policy"]["policy"] == client_policy("database", "reader")
    (mount,) = registered(monitor, "vault:index/mount:Mount").values()
    assert mount["maxLeaseTtlSeconds"] == 86400
    secret_ids = registered(monitor, "vault:appRole/authBackendRoleSecretId:AuthBackendRoleSecretId")
    assert {name: s["ttl"] for name, s in secret_ids.items()} == {"reader-secret-id": 86400, "app-secret-id": 86400}

    dynamic = registered(monitor, "pulumi-python:dynamic:Resource")
    checks = dynamic["checks"]
    clients = unwrap(checks["clients"])
    assert [c["name"] for c in clients] == ["reader", "app"]
    assert clients[1]["creds_path"] == "database/creds/app" and clients[1]["max_ttl"] == 8 * 3600
    assert "CREATE ROLE probe" in clients[1]["forbidden"]
    assert checks["static_creds_paths"] == ["database/static-creds/svc_reporting"]
    assert "database/config/app" in checks["protected_paths"]
    # Each server has its keeper; the Vault server trusts the database's CA.
    assert {dynamic["vault-running"]["kind"], dynamic["db-running"]["kind"]} == {"openbao", "postgres"}
    assert dynamic["vault-openbao"]["database_ca_pem"] == "cert_pem of bootstrap-ca"
