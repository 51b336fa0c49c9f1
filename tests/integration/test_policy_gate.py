"""The policy gate through the real CLI: `pulumi preview --policy-pack policies` on a team's program
of raw pulumi-vault and Kubernetes resources (tests/fixtures/policy), compliant or with one planted
mistake, and on the root program with a gate stricter than its config.

Each mandatory mistake fails the preview, naming the policy and the resource; the advisory one is
reported and the preview passes.
"""

import json
import re

import pytest
from pulumi import automation as auto

from tests.automation import root_program, stack_file_config, temporary_stack, local_servers_config
from tests.support.openbao_dev import dev_openbao
from toolchain.env import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "policy"
PACK = str(ROOT / "policies")
# Resources as the CLI's report names them (type tokens in their display form).
CONNECTION = "vault:database:SecretBackendConnection: connection"
ROLE = "vault:database:SecretBackendRole: reports"
POLICY = "vault:index:Policy: reports"
APPROLE = "vault:appRole:AuthBackendRole: reports"
K8S_ROLE = "vault:kubernetes:AuthBackendRole: reports-pods"
STATEFULSET = "kubernetes:apps/v1:StatefulSet: postgres"

# scenario, the policy it breaks, the resource named
MANDATORY = [
    ("wildcard-roles", "database-connection-allowed-roles", CONNECTION),
    ("literal-password", "database-connection-templated-credentials", CONNECTION),
    ("sslmode-disable", "database-connection-verify-full", CONNECTION),
    ("sslmode-require", "database-connection-verify-full", CONNECTION),
    ("superuser", "dynamic-role-least-privilege", ROLE),
    ("grant-all", "dynamic-role-least-privilege", ROLE),
    ("direct-grant", "dynamic-role-least-privilege", ROLE),
    ("no-valid-until", "dynamic-role-valid-until", ROLE),
    ("default-over-max", "dynamic-role-ttls", ROLE),
    ("over-the-cap", "dynamic-role-ttls", ROLE),
    ("no-revocation", "dynamic-role-revocation", ROLE),
    ("revocation-keeps-user", "dynamic-role-revocation", ROLE),
    ("superuser-admin", "database-connection-not-superuser", CONNECTION),
    ("rotate-root-policy", "client-policy-engine-untouched", POLICY),
    ("others-leases", "client-policy-least-privilege", POLICY),
    ("no-secret-id", "approle-secret-id-required", APPROLE),
    ("approle-default-policy", "approle-bounded", APPROLE),
    ("any-namespace", "kubernetes-auth-bounded", K8S_ROLE),
    ("creds-glob", "client-policy-least-privilege", POLICY),
    ("sudo", "client-policy-least-privilege", POLICY),
    ("root-policy", "approle-bounded", APPROLE),
    ("unbounded-token", "approle-bounded", APPROLE),
    ("any-service-account", "kubernetes-auth-bounded", K8S_ROLE),
    ("no-root-rotation", "root-credentials-rotated", None),
    ("static-role-admin", "static-role-not-admin", None),
    ("runs-as-root", "kubernetes-workload-hardened", STATEFULSET),
    ("kv-password-after-migration", "kv-database-password-after-migration", None),
]


def quiet(_line: str) -> None:
    """Keeps engine output out of the test log (the assertions read it from the result)."""


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("policy")
    pack_config = tmp_path / "gate.json"
    pack_config.write_text(json.dumps({"dynamic-role-ttls": {"maxTtlCapSeconds": 86400}}))
    with dev_openbao(tmp_path) as vault, temporary_stack(FIXTURE, tmp_path, "policy") as stack:
        stack.set_all_config({
            "render_dir": auto.ConfigValue(str(tmp_path / "manifests")),
            "vault:address": auto.ConfigValue(vault.url),
            "vault:token": auto.ConfigValue(vault.token, secret=True),
        })
        yield stack, str(pack_config)


def gate(stack: auto.Stack, pack_config: str, scenario: str) -> str:
    """The preview's output; raises CommandError when a mandatory policy failed."""
    stack.set_config("scenario", auto.ConfigValue(scenario))
    return stack.preview(policy_packs=[PACK], policy_pack_configs=[pack_config], on_output=quiet).stdout


def test_the_compliant_program_passes_with_no_mandatory_violation(team):
    output = gate(*team, "compliant")
    assert "mandatory" not in output and "dbcreds-gate" in output


@pytest.mark.parametrize("scenario, policy, resource", MANDATORY, ids=[m[0] for m in MANDATORY])
def test_each_mandatory_mistake_fails_the_preview_naming_policy_and_resource(team, scenario, policy, resource):
    with pytest.raises(auto.CommandError) as failed:
        gate(*team, scenario)
    output = str(failed.value)
    assert re.search(rf"\[mandatory\]\s+{re.escape(policy)}", output), output[-3000:]
    if resource:
        assert f"({resource})" in output, output[-3000:]
    # Only the planted mistake: no other policy fails.
    failing = set(re.findall(r"\[mandatory\]\s+(\S+)", output))
    assert failing == {policy}, failing
    # The violation names the field, never a secret value.
    assert "hunter2" not in output and "bootstrap-password" not in output


@pytest.mark.parametrize("scenario, policy", [("no-connection-limit", "dynamic-role-connection-limit"),
                                              ("unverified-connection", "database-connection-verified"),
                                              ("kv-password-at-dual", "kv-database-password-during-migration")])
def test_an_advisory_mistake_is_reported_and_the_preview_passes(team, scenario, policy):
    output = gate(*team, scenario)
    assert re.search(rf"\[advisory\]\s+{re.escape(policy)}", output) and "mandatory" not in output
    assert "hunter2" not in output


#: Production's rules, as the gate's config for the stack named prod sets them (stacks/config.py).
PRODUCTION = {"vault-highly-available": {"minNodes": 3, "requireAutoUnseal": True},
              "vault-no-root-token": {"requireNoRootToken": True}, "kubernetes-vault-spread": {"requireSpread": True},
              "root-credentials-rotated": {"requireRotationSchedule": True, "maxRootRotationSeconds": 7 * 86400}}
VAULT_SET = "kubernetes:apps/v1:StatefulSet: vault"
PRODUCTION_MISTAKES = [
    ("openbao-one-replica", "vault-highly-available", None),
    ("openbao-shamir", "vault-highly-available", None),
    ("openbao-together", "kubernetes-vault-spread", None),
    ("openbao-no-budget", "kubernetes-vault-spread", None),
    ("host-network", "kubernetes-workload-hardened", VAULT_SET),
    ("root-token-kept", "vault-no-root-token", None),
    ("root-rotated-once", "root-credentials-rotated", None),
    ("root-rotation-too-slow", "root-credentials-rotated", None),
]


@pytest.fixture(scope="module")
def production(team, tmp_path_factory):
    stack, pack_config = team
    config = tmp_path_factory.mktemp("production") / "gate.json"
    config.write_text(json.dumps({**json.loads(open(pack_config).read()), **PRODUCTION}))
    return stack, str(config)


def test_the_compliant_program_passes_productions_rules(production):
    assert "mandatory" not in gate(*production, "compliant")


@pytest.mark.parametrize("scenario, policy, resource", PRODUCTION_MISTAKES, ids=[m[0] for m in PRODUCTION_MISTAKES])
def test_productions_rules_refuse_each_mistake_by_name(production, scenario, policy, resource):
    with pytest.raises(auto.CommandError) as failed:
        gate(*production, scenario)
    output = str(failed.value)
    assert re.search(rf"\[mandatory\]\s+{re.escape(policy)}", output), output[-3000:]
    if resource:
        assert f"({resource})" in output, output[-3000:]
    assert set(re.findall(r"\[mandatory\]\s+(\S+)", output)) == {policy}


def test_a_gate_stricter_than_the_stacks_config_fails_the_root_program(tmp_path):
    """prod's 4h cap, enforced on a program whose roles live 8h: named, with the engine's role."""
    pack_config = tmp_path / "prod-gate.json"
    pack_config.write_text(json.dumps({"dynamic-role-ttls": {"maxTtlCapSeconds": 4 * 3600}}))
    with temporary_stack(root_program(tmp_path), tmp_path, "gate") as stack:
        stack.set_all_config({**stack_file_config("dev"), **local_servers_config(tmp_path / "data")})
        with pytest.raises(auto.CommandError) as failed:
            stack.preview(policy_packs=[PACK], policy_pack_configs=[str(pack_config)], on_output=quiet)
    output = str(failed.value)
    assert re.search(r"\[mandatory\]\s+dynamic-role-ttls", output)
    assert "(vault:database:SecretBackendRole: engine-role-app)" in output
    assert "maxTtl (28800s) is over this environment's cap of 14400s" in output


def test_prod_with_fewer_than_three_openbao_nodes_is_refused_by_the_gate_before_anything_is_made(tmp_path):
    """prod's own gate config (production's rules), on prod's stack file asking for one OpenBao node:
    the preview fails naming the policy and what to set; nothing was made (no cluster is even needed)."""
    from stacks.config import of_stack, policy_pack_config

    pack_config = tmp_path / "prod-gate.json"
    with temporary_stack(root_program(tmp_path), tmp_path, "gate") as stack:
        stack.set_all_config({**stack_file_config("prod"), "dbcreds:vault_nodes": auto.ConfigValue("1"),
                              "dbcreds:k8s_kubeconfig": auto.ConfigValue(str(tmp_path / "no-cluster"))})
        pack_config.write_text(json.dumps(policy_pack_config(of_stack(stack, ROOT), "prod")))
        with pytest.raises(auto.CommandError) as failed:
            stack.preview(policy_packs=[PACK], policy_pack_configs=[str(pack_config)], on_output=quiet)
        assert stack.export_stack().deployment.get("resources") in (None, [])
    output = str(failed.value)
    assert re.search(r"\[mandatory\]\s+vault-highly-available", output), output[-3000:]
    assert "1 OpenBao replica(s): this environment needs at least 3 (vault_nodes)" in output
