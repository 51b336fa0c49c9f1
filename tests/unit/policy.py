"""Running the gate's policies without an engine, as pulumi-policy-aws's test helpers do."""

from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs

from policies.pack import POLICIES

BY_NAME = {p.name: p for p in POLICIES}


def violations(policy: str, resource_type: str, props: dict, config: dict | None = None) -> list[str]:
    """What one resource policy reports for a resource of this type and these props."""
    found: list[str] = []
    args = ResourceValidationArgs(resource_type, props, f"urn:pulumi:t::p::{resource_type}::r", "r",
                                  PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), []), None,
                                  config or {})
    BY_NAME[policy].validate(args, lambda message, urn=None: found.append(message))
    return found
