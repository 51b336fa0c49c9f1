"""The old name of `components.local.providers.cockroach_node` (see `components.dynamic`)."""

from components.local.providers.cockroach_node import _CockroachNodeProvider  # noqa: F401
