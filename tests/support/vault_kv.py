"""A KV version 2 mount of a test's own in a stack's Vault."""

import hvac
from hvac import exceptions as vault_errors

from tests.support.waiting import wait_for

#: What a new KV v2 mount answers while it sets up its versioned storage.
UPGRADING = "Upgrading from non-versioned to versioned data"


def enable_kv_v2(client: hvac.Client, path: str) -> None:
    """Mounts KV v2 at path and returns once it serves requests: a new mount refuses them for a moment
    while it upgrades its storage, as Vault documents."""
    client.sys.enable_secrets_engine("kv", path=path, options={"version": "2"})
    wait_for(lambda: _serves(client, path), f"the new KV mount {path}/ serving requests", timeout=30, every=0.2)


def _serves(client: hvac.Client, path: str) -> bool:
    try:
        client.secrets.kv.v2.read_secret_version("never-written", mount_point=path, raise_on_deleted_version=True)
    except vault_errors.InvalidPath:
        return True  # Served: nothing there.
    except vault_errors.InvalidRequest as error:
        if UPGRADING in str(error):
            return False
        raise
    return True
