"""The old name of `components.local.providers.postgres_server` (see `components.dynamic`)."""

from components.local.providers.postgres_server import _PostgresServerProvider  # noqa: F401
