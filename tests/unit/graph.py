"""Reading what the mock monitor recorded."""

import asyncio

import pulumi


def is_secret(output: pulumi.Output) -> pulumi.Output:
    """An Output of whether `output` is secret (to wait on with the values it checks)."""
    return pulumi.Output.from_input(asyncio.ensure_future(output.is_secret()))


def registered(monitor, type_token: str) -> dict:
    """Resources of one type by name: their recorded inputs and outputs."""
    return {u.rsplit("::", 1)[1]: r.state for u, r in monitor.get_registered_resources().items()
            if f"${type_token}::" in u or f"::{type_token}::" in u}


def unwrap(value):
    """A secret's value in the mock monitor's wire form."""
    return value["value"] if isinstance(value, dict) and "value" in value else value
