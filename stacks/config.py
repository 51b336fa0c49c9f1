"""Reads a stack's config and validates it with pure functions.

Every error names the config field, so a wrong value fails `pulumi preview`
with a message saying what to fix, before any resource is created.
"""

from dataclasses import dataclass
from typing import Any, Mapping

MAX_CA_VALIDITY_HOURS = 24 * 365 * 10


class ConfigError(ValueError):
    """A stack config value is wrong; the message starts with the field's name."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"config {field}: {problem}")
        self.field = field


@dataclass(frozen=True)
class StackConfig:
    ca_common_name: str
    ca_validity_hours: int
    cert_validity_hours: int


def _positive_int(raw: Mapping[str, Any], field: str, default: int, maximum: int) -> int:
    value = raw.get(field, default)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(field, f"must be a whole number of hours, got {value!r}")
    if not 1 <= value <= maximum:
        raise ConfigError(field, f"must be between 1 and {maximum}, got {value}")
    return value


def validate(raw: Mapping[str, Any], stack: str) -> StackConfig:
    """A StackConfig from raw config values (strings or numbers), or a ConfigError."""
    name = raw.get("ca_common_name", f"dbcreds {stack} CA")
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise ConfigError("ca_common_name", f"must be 1 to 64 characters, got {name!r}")
    ca_hours = _positive_int(raw, "ca_validity_hours", 24 * 365, MAX_CA_VALIDITY_HOURS)
    cert_hours = _positive_int(raw, "cert_validity_hours", 24 * 90, ca_hours)
    return StackConfig(ca_common_name=name, ca_validity_hours=ca_hours, cert_validity_hours=cert_hours)


def load() -> StackConfig:
    """The current stack's validated config (call from a Pulumi program)."""
    import pulumi

    config = pulumi.Config()
    fields = ("ca_common_name", "ca_validity_hours", "cert_validity_hours")
    raw = {f: config.get(f) for f in fields if config.get(f) is not None}
    return validate(raw, pulumi.get_stack())
