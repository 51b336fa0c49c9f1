"""The kubernetes target's rules (policies/rules/kubernetes_workloads.py): hardened workloads, OpenBao's
pods spread, the database's namespace isolated. Each mutation of the happy path (tests/unit/policy.py)
is caught."""

import copy

import pytest
from pulumi_policy import StackValidationArgs

from components.kubernetes import manifests as k8s
from policies.rules import common
from tests.unit.policy import (
    BY_NAME,
    DB_STATEFULSET,
    VAULT_STATEFULSET,
    assert_caught,
    changed,
    resource,
    stack_violations,
    violations,
)

POD = "spec.template.spec"

CASES = [
    ("kubernetes-workload-hardened", common.STATEFULSET, f"{POD}.securityContext.runAsNonRoot", None, "runAsNonRoot"),
    ("kubernetes-workload-hardened", common.STATEFULSET, f"{POD}.automountServiceAccountToken", None, "API token"),
    ("kubernetes-workload-hardened", common.STATEFULSET, f"{POD}.containers",
     [{"name": "pg", "image": "postgres:15", "securityContext": {"allowPrivilegeEscalation": False,
                                                                 "readOnlyRootFilesystem": True,
                                                                 "capabilities": {"drop": ["ALL"]}}}],
     "requests and a memory limit"),
    ("kubernetes-workload-hardened", common.STATEFULSET, f"{POD}.containers",
     [{"name": "pg", "resources": k8s.resources("1", "1Gi"), "securityContext": {"privileged": True}}],
     "allowPrivilegeEscalation"),
    ("kubernetes-workload-hardened", common.STATEFULSET, f"{POD}.hostNetwork", True, "hostNetwork is true"),
    ("kubernetes-workload-hardened", common.STATEFULSET, f"{POD}.hostPID", True, "hostPID is true"),
]


@pytest.mark.parametrize("policy, resource_type, path, value, expected", CASES)
def test_each_violation_is_caught_with_a_message_naming_the_field(policy, resource_type, path, value, expected):
    assert_caught(policy, resource_type, path, value, expected)


def isolation_violations(resources) -> list[str]:
    found: list[str] = []
    BY_NAME["kubernetes-database-isolated"].validate(StackValidationArgs(resources, {}),
                                                     lambda m, urn=None: found.append(m))
    return found


def test_the_database_must_be_isolated_by_network_policies():
    db = resource(common.STATEFULSET, "db", DB_STATEFULSET)
    policies = [resource(common.NETWORK_POLICY, name, {"spec": spec})
                for name, spec in k8s.network_policies("ns").items()]
    assert isolation_violations([db, *policies]) == []
    without_deny = [p for p in policies if p.name != "default-deny-ingress"]
    assert "default-deny" in isolation_violations([db, *without_deny])[0]
    only_deny = [p for p in policies if p.name == "default-deny-ingress"]
    assert "opens the database's pods" in isolation_violations([db, *only_deny])[0]
    open_to_all = resource(common.NETWORK_POLICY, "open", {"spec": {
        "podSelector": {"matchLabels": k8s.labels(k8s.DB_APP)}, "ingress": [{"ports": [{"port": 5432}]}]}})
    assert "any pod" in isolation_violations([db, *only_deny, open_to_all])[0]


API_TOKEN = k8s.api_token_volume("api-token")


def test_only_openbaos_pods_carry_an_api_token_projected_read_only_at_the_standard_path():
    reviewer = {"metadata": VAULT_STATEFULSET["metadata"],
                "spec": k8s.openbao_statefulset("vault", "ns", "dbcreds-openbao:1", "Never", 3, "1Gi", None, "cm",
                                                "tls", "seal", service_account="vault")}
    pod = reviewer["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "vault" and pod["automountServiceAccountToken"] is False
    mount = {"name": "api-token", "mountPath": k8s.API_TOKEN_DIR, "readOnly": True}
    assert mount in pod["containers"][0]["volumeMounts"]
    assert violations("kubernetes-workload-hardened", common.STATEFULSET, reviewer) == []
    # Elsewhere, or writable: refused.
    moved = copy.deepcopy(reviewer)
    moved["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][-1]["mountPath"] = "/openbao/token"
    assert "mounted elsewhere" in violations("kubernetes-workload-hardened", common.STATEFULSET, moved)[0]
    writable = copy.deepcopy(reviewer)
    writable["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][-1].pop("readOnly")
    assert "writable" in violations("kubernetes-workload-hardened", common.STATEFULSET, writable)[0]
    # Another workload's pods: no token the API server takes (none, or the API server's audience), as a
    # StatefulSet or a Deployment; a token for Vault (an audience of its own) is no API token.
    for audience in (None, "https://kubernetes.default.svc.cluster.local"):
        volume = copy.deepcopy(API_TOKEN)
        if audience:
            volume["projected"]["sources"][0]["serviceAccountToken"]["audience"] = audience
        database = changed(DB_STATEFULSET, f"{POD}.volumes", [*DB_STATEFULSET["spec"]["template"]["spec"]["volumes"],
                                                               volume])
        for kind in (common.STATEFULSET, common.DEPLOYMENT):
            found = violations("kubernetes-workload-hardened", kind, database)
            assert any("projects an API token" in m for m in found), found
    vault_token = copy.deepcopy(API_TOKEN)
    vault_token["projected"]["sources"][0]["serviceAccountToken"]["audience"] = "vault.dbcreds.svc"
    assert violations("kubernetes-workload-hardened", common.DEPLOYMENT, changed(
        DB_STATEFULSET, f"{POD}.volumes", [vault_token])) == []


def test_the_openbao_statefulset_is_hardened_and_spread():
    assert violations("kubernetes-workload-hardened", common.STATEFULSET, VAULT_STATEFULSET) == []
    budget = resource(common.PDB, "vault", k8s.disruption_budget("vault", "ns", k8s.VAULT_APP))
    statefulset = resource(common.STATEFULSET, "vault", VAULT_STATEFULSET)
    production = {"requireSpread": True}
    assert stack_violations("kubernetes-vault-spread", [statefulset, budget], production) == []
    assert "PodDisruptionBudget" in stack_violations("kubernetes-vault-spread", [statefulset], production)[0]
    together = resource(common.STATEFULSET, "vault", changed(VAULT_STATEFULSET, f"{POD}.affinity", None))
    assert "anti-affinity" in stack_violations("kubernetes-vault-spread", [together, budget], production)[0]
    # Elsewhere it is not asked.
    assert stack_violations("kubernetes-vault-spread", [together]) == []


def test_openbao_pods_wait_out_a_lost_node_as_long_as_kubernetes_default():
    tolerations = VAULT_STATEFULSET["spec"]["template"]["spec"]["tolerations"]
    assert {(t["key"], t["effect"], t["tolerationSeconds"]) for t in tolerations} == {
        ("node.kubernetes.io/not-ready", "NoExecute", 300), ("node.kubernetes.io/unreachable", "NoExecute", 300)}
