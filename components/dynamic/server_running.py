"""The old name of `components.local.providers.server_running` (see `components.dynamic`)."""

from components.local.providers.server_running import _ServerRunningProvider  # noqa: F401
