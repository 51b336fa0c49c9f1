"""Running the gate's policies without an engine, as pulumi-policy-aws's test helpers do."""

from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs
from pulumi_policy.proxy import unknown_checking_proxy

from policies.pack import POLICIES

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
