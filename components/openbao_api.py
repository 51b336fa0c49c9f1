"""The old name of `components.servers.openbao_api` (see `components.dynamic`)."""

from components.servers.openbao_api import _OpenBaoInitProvider, _UnsealedProvider  # noqa: F401
