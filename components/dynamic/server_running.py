"""The old name of `components.servers.server_running` (see `components.dynamic`)."""

from components.servers.server_running import _ServerRunningProvider  # noqa: F401
