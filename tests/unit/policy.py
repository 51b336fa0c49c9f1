"""Running the gate's policies without an engine, as pulumi-policy-aws's test helpers do, and the happy
path every spec of tests/unit/test_policy_*.py starts from.

Props are in the engine's camelCase, as the pack receives them. The happy path is what our components
declare; each case changes one field (pulumi-policy-aws style).
"""

import copy
from types import SimpleNamespace

from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs, StackValidationArgs
from pulumi_policy.proxy import unknown_checking_proxy

from components.kubernetes import manifests as k8s
from components.postgres_sql import creation_statements, revocation_statements
from components.vault_policies import client_policy
from policies.pack import POLICIES
from policies.rules import common

BY_NAME = {p.name: p for p in POLICIES}


def violations(policy: str, resource_type: str, props: dict, config: dict | None = None) -> list[str]:
    """What one resource policy reports for a resource of this type and these props, handed over as
    the engine hands them (read-only proxies)."""
    found: list[str] = []
    args = ResourceValidationArgs(resource_type, unknown_checking_proxy(props), f"urn:pulumi:t::p::{resource_type}::r", "r",
                                  PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), []), None,
                                  config or {})
    BY_NAME[policy].validate(args, lambda message, urn=None: found.append(message))
    return found


def resource(resource_type: str, name: str, props: dict):
    """A resource as a stack policy sees it."""
    return SimpleNamespace(resource_type=resource_type, name=name, props=props)


def stack_violations(policy: str, resources, config: dict | None = None) -> list[str]:
    """What one stack policy reports for these resources."""
    found: list[str] = []
    BY_NAME[policy].validate(StackValidationArgs(resources, config or {}), lambda m, urn=None: found.append(m))
    return found


CONNECTION = {
    "backend": "database", "name": "app", "allowedRoles": ["reader", "app"], "verifyConnection": True,
    "postgresql": {"connectionUrl": "postgresql://{{username}}:{{password}}@127.0.0.1:15432/app"
                                    "?sslmode=verify-full&sslrootcert=/vault/tls/db-ca.crt",
                   "username": "dbcreds_admin", "passwordWo": "bootstrap", "passwordWoVersion": 1},
}
ROLE = {"backend": "database", "name": "app", "dbName": "app", "defaultTtl": 3600, "maxTtl": 28800,
        "creationStatements": creation_statements("dbcreds_group_app"),
        "revocationStatements": revocation_statements()}
STATIC_ROLE = {"backend": "database", "name": "svc", "dbName": "app", "username": "svc", "rotationPeriod": 86400}
POLICY = {"name": "client-reader", "policy": client_policy("database", "reader")}
APPROLE = {"backend": "approle", "roleName": "reader", "tokenPolicies": ["client-reader"], "tokenTtl": 900,
           "tokenMaxTtl": 3600, "secretIdTtl": 86400, "tokenNoDefaultPolicy": True}
#: What components/vault/kubernetes_access.py registers for a client.
K8S_ROLE = {"backend": "kubernetes", "roleName": "team-app", "boundServiceAccountNames": ["team-app"],
            "boundServiceAccountNamespaces": ["team-app"], "audience": "vault.dbcreds.svc",
            "tokenPolicies": ["client-team-app"], "tokenNoDefaultPolicy": True, "tokenTtl": 900, "tokenMaxTtl": 7200}
VAULT_SERVER = {"data_dir": "/d", "port": 18200, "key_shares": 1, "cert_pem": "cert", "key_pem": "key"}
DB_STATEFULSET = {"metadata": k8s.metadata("db", "ns", k8s.DB_APP, "db"),
                  "spec": k8s.postgres_statefulset("db", "dbcreds-postgres:1", "Never", "1Gi", None, "cm", "tls", "pw")}
VAULT_STATEFULSET = {"metadata": k8s.metadata("vault", "ns", k8s.VAULT_APP, "vault"),
                     "spec": k8s.openbao_statefulset("vault", "ns", "dbcreds-openbao:1", "Never", 3, "1Gi", None, "cm",
                                                     "tls", "seal")}

#: What components/docker/postgres.py registers (camelCase), its volume a named one.
CONTAINER_PROPS = {
    "name": "dbcreds-dev-db-postgres", "image": "sha256:0123", "networkMode": "host", "privileged": False,
    "capabilities": {"drops": ["ALL"], "adds": ["CHOWN", "FOWNER", "SETUID", "SETGID"]},
    "securityOpts": ["no-new-privileges"], "restart": "unless-stopped",
    "volumes": [{"volumeName": "dbcreds-dev-db-data", "containerPath": "/var/lib/postgresql/data"}],
}
HAPPY = {
    common.CONNECTION: CONNECTION, common.ROLE: ROLE, common.STATIC_ROLE: STATIC_ROLE, common.POLICY: POLICY,
    common.APPROLE_ROLE: APPROLE, common.OPENBAO_SERVER: VAULT_SERVER, common.K8S_AUTH_ROLE: K8S_ROLE,
    common.STATEFULSET: DB_STATEFULSET, common.CONTAINER: CONTAINER_PROPS,
}

#: The gate's config of the happy path's stack.
HAPPY_CONFIG = {"adminRoles": ["dbcreds_admin"], "allowedHostPaths": ["/srv/stack/data"]}


def changed(props: dict, path: str, value) -> dict:
    """A deep copy of props with the dotted path set (None removes it)."""
    props = copy.deepcopy(props)
    *parents, last = path.split(".")
    target = props
    for key in parents:
        target = target[key]
    if value is None:
        target.pop(last, None)
    else:
        target[last] = value
    return props


def assert_caught(policy: str, resource_type: str, path: str, value, expected: str) -> None:
    """The happy path's resource of this type with one field changed: the policy reports it, a message
    saying `expected`, each message naming the resource (`r`) and none quoting a secret of the cases."""
    found = violations(policy, resource_type, changed(HAPPY[resource_type], path, value), HAPPY_CONFIG)
    assert found and any(expected in message for message in found), found
    assert all(message.startswith("r: ") for message in found), found
    assert not any("hunter2" in m or "s3cret" in m for m in found), found
