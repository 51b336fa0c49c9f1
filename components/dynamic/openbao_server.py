"""The old name of `components.local.providers.openbao_server` (see `components.dynamic`)."""

from components.local.providers.openbao_server import _OpenBaoServerProvider  # noqa: F401
