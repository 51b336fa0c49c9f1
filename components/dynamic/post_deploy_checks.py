"""The old name of `components.vault.post_deploy_checks` (see `components.dynamic`)."""

from components.vault.post_deploy_checks import _ChecksProvider  # noqa: F401
