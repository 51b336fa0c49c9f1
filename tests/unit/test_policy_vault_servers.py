"""The rules of our OpenBao servers (policies/rules/vault_servers.py): TLS, how many nodes and how
they unseal, the root token. Each mutation of the happy path (tests/unit/policy.py) is caught."""

import pytest

from components.kubernetes import manifests as k8s
from policies.rules import common
from tests.unit.policy import VAULT_SERVER, assert_caught, resource, stack_violations, violations

CASES = [
    ("vault-server-hardened", common.OPENBAO_SERVER, "cert_pem", None, "cert_pem is empty"),
    ("vault-server-hardened", common.OPENBAO_SERVER, "key_pem", "", "key_pem is empty"),
]


@pytest.mark.parametrize("policy, resource_type, path, value, expected", CASES)
def test_each_violation_is_caught_with_a_message_naming_the_field(policy, resource_type, path, value, expected):
    assert_caught(policy, resource_type, path, value, expected)


def test_a_certificate_still_being_made_is_not_a_missing_one():
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    unknown = {**VAULT_SERVER, "cert_pem": UNKNOWN_STRING_VALUE, "key_pem": UNKNOWN_STRING_VALUE}
    assert violations("vault-server-hardened", common.OPENBAO_SERVER, unknown) == []


NODE = {"cert_pem": "c", "key_pem": "k", "seal": "static"}


def test_production_runs_several_openbao_nodes_that_unseal_themselves():
    production = {"minNodes": 3, "requireAutoUnseal": True}
    cluster = [resource(common.OPENBAO_SERVER, f"vault-{i}", NODE) for i in range(3)]
    assert stack_violations("vault-highly-available", cluster, production) == []
    single = stack_violations("vault-highly-available", cluster[:1], production)
    assert single and "1 node(s)" in single[0] and "vault_nodes" in single[0]
    shamir = [resource(common.OPENBAO_SERVER, f"vault-{i}", {"cert_pem": "c"}) for i in range(3)]
    assert "Shamir" in stack_violations("vault-highly-available", shamir, production)[0]
    # Elsewhere one Shamir node is fine (the schema's defaults).
    assert stack_violations("vault-highly-available", shamir[:1]) == []


def test_production_on_kubernetes_counts_replicas_and_reads_the_seal_in_the_config():
    production = {"minNodes": 3, "requireAutoUnseal": True}
    labels = {"metadata": {"labels": k8s.labels(k8s.VAULT_APP, "vault")}}
    statefulset = resource(common.STATEFULSET, "vault", {**labels, "spec": {"replicas": 3}})
    static = resource(common.CONFIG_MAP, "vault-config", {**labels, "data": {"config.hcl": 'seal "static" {\n}\n'}})
    shamir = resource(common.CONFIG_MAP, "vault-config", {**labels, "data": {"config.hcl": 'storage "raft" {}'}})
    assert stack_violations("vault-highly-available", [statefulset, static], production) == []
    one = resource(common.STATEFULSET, "vault", {**labels, "spec": {"replicas": 1}})
    assert "1 OpenBao replica(s)" in stack_violations("vault-highly-available", [one, static], production)[0]
    assert "auto-unseal" in stack_violations("vault-highly-available", [statefulset, shamir], production)[0]


def test_production_keeps_no_root_token():
    production = {"requireNoRootToken": True}
    handed_over = resource(common.OPENBAO_INIT, "vault-init", {"keep_root_token": False})
    assert stack_violations("vault-no-root-token", [handed_over], production) == []
    kept = resource(common.OPENBAO_INIT, "vault-init", {"address": "https://x"})
    assert "keeps the root token" in stack_violations("vault-no-root-token", [kept], production)[0]
    local = resource(common.OPENBAO_SERVER, "vault-openbao", VAULT_SERVER)
    assert "local OpenBao server keeps its root token" in stack_violations("vault-no-root-token", [local],
                                                                          production)[0]
    assert stack_violations("vault-no-root-token", [kept, local]) == []
