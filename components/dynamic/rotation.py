"""The old name of `components.vault.rotation` (see `components.dynamic`)."""

from components.vault.rotation import _RotationProvider  # noqa: F401
