"""Dynamic providers are kept in the state by their module's name: a moved module keeps its old name."""

import base64

import pytest

MOVED = [
    ("components.kubernetes.volumes", "_NodeFolderProvider", "components.kubernetes_volumes"),
    ("components.local.providers.openbao_server", "_OpenBaoServerProvider", "components.dynamic.openbao_server"),
    ("components.local.providers.postgres_server", "_PostgresServerProvider", "components.dynamic.postgres_server"),
    ("components.local.providers.cockroach_node", "_CockroachNodeProvider", "components.dynamic.cockroach_node"),
    ("components.servers.server_running", "_ServerRunningProvider", "components.dynamic.server_running"),
    ("components.servers.openbao_api", "_OpenBaoInitProvider", "components.openbao_api"),
    ("components.servers.openbao_api", "_UnsealedProvider", "components.openbao_api"),
    ("components.vault.post_deploy_checks", "_ChecksProvider", "components.dynamic.post_deploy_checks"),
    ("components.vault.rotation", "_RotationProvider", "components.dynamic.rotation"),
]


def _pickled_name(module: str) -> bytes:
    """A module name as pickle records it (SHORT_BINUNICODE: its length, then the text)."""
    return b"\x8c" + bytes([len(module)]) + module.encode()


@pytest.mark.parametrize("module, name, old", MOVED)
def test_a_provider_recorded_under_a_moved_modules_old_name_still_loads(module, name, old):
    """A stack made before the module moved has its provider recorded under the old name: its
    refresh and destroy must still load it, as the same class."""
    import importlib

    import dill
    from pulumi.dynamic.dynamic import serialize_provider

    provider_class = getattr(importlib.import_module(module), name)
    assert _pickled_name(module) in base64.b64decode(serialize_provider(provider_class())), (
        "the provider is no longer pickled by reference to its module")
    # As a stack made before the move recorded it: the same class, under the old module's name.
    provider_class.__module__ = old
    try:
        recorded = base64.b64decode(serialize_provider(provider_class()))
    finally:
        provider_class.__module__ = module
    assert _pickled_name(old) in recorded
    assert type(dill.loads(recorded)) is provider_class
