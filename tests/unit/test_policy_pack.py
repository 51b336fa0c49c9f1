"""The pack (policies/pack.py): the happy path (tests/unit/policy.py) passes every resource policy,
the levels, the schemas' defaults, each policy judging its own types only. Each domain's rules have a
spec of their own (tests/unit/test_policy_<domain>.py)."""

import pytest
from pulumi_policy import ResourceValidationPolicy

from policies.pack import POLICIES
from policies.rules import common
from tests.unit.policy import APPROLE, HAPPY, HAPPY_CONFIG, changed, violations


@pytest.mark.parametrize("policy", [p.name for p in POLICIES if isinstance(p, ResourceValidationPolicy)])
def test_the_happy_path_passes_every_rule(policy):
    for resource_type, props in HAPPY.items():
        assert violations(policy, resource_type, props, HAPPY_CONFIG) == []


def test_levels_mandatory_for_tls_grants_and_lifetimes_advisory_for_the_rest():
    levels = {p.name: p.enforcement_level.value for p in POLICIES}
    assert {n for n, level in levels.items() if level == "advisory"} == {
        "dynamic-role-connection-limit", "database-connection-verified", "kubernetes-database-isolated",
        "kv-database-password-during-migration"}
    assert all(level in ("mandatory", "advisory") for level in levels.values())


def test_a_policy_without_config_gets_its_schemas_defaults():
    from policies.pack import APPROLE_CAPS, defaults

    assert defaults(APPROLE_CAPS) == {"maxTokenTtlSeconds": 86400, "maxSecretIdTtlSeconds": 30 * 86400}
    # Nothing given: the schema's cap of a day holds.
    assert "over the cap of 86400s" in violations("approle-bounded", common.APPROLE_ROLE,
                                                   changed(APPROLE, "tokenMaxTtl", 86401))[0]


def test_rules_judge_only_their_own_type():
    assert violations("dynamic-role-ttls", common.CONNECTION, {"maxTtl": 10**9}) == []
