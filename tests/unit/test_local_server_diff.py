"""What a change of each input does to a local server: replace it, restart it, update it live, or nothing."""

import pytest

from components.local.providers.cockroach_node import _CockroachNodeProvider
from components.local.providers.openbao_server import _OpenBaoServerProvider
from components.local.providers.postgres_server import _PostgresServerProvider

OPENBAO = {"data_dir": "/d/openbao", "port": 18200, "cluster_port": 18201, "key_shares": 1, "key_threshold": 1,
           "ca_pem": "ca", "cert_pem": "cert", "key_pem": "key", "database_ca_pem": "db-ca"}
#: A node of a cluster (static seal) records what a single Shamir server does not.
OPENBAO_NODE = {**OPENBAO, "peers": ["https://127.0.0.1:18301"], "seal": "static", "seal_key": "k", "initialises": True}
POSTGRES = {"data_dir": "/d/postgres", "port": 15432, "admin": "dbcreds_admin", "database": "app",
            "admin_password": "first", "cert_pem": "cert", "key_pem": "key", "ca_pem": "ca"}
COCKROACH = {"data_dir": "/d/cockroach", "port": 26257, "http_port": 8080, "admin": "dbcreds_admin",
             "database": "app", "admin_password": "first", "files": {"ca.crt": "ca"}, "groups": {}}


@pytest.mark.parametrize("provider, olds, key, value, replaces, restarts", [
    (_OpenBaoServerProvider, OPENBAO, "key_shares", 3, True, False),
    (_OpenBaoServerProvider, OPENBAO, "cert_pem", "cert2", False, True),
    (_OpenBaoServerProvider, OPENBAO, "database_ca_pem", "db-ca2", False, False),
    (_OpenBaoServerProvider, OPENBAO_NODE, "peers", ["https://127.0.0.1:18302"], False, True),
    (_OpenBaoServerProvider, OPENBAO_NODE, "seal_key", "k2", False, True),
    (_OpenBaoServerProvider, OPENBAO_NODE, "seal", "shamir", True, False),
    (_PostgresServerProvider, POSTGRES, "admin", "other", True, False),
    (_PostgresServerProvider, POSTGRES, "port", 15433, False, True),
    (_PostgresServerProvider, POSTGRES, "key_pem", "key2", False, False),
    (_CockroachNodeProvider, COCKROACH, "database", "other", True, False),
    (_CockroachNodeProvider, COCKROACH, "files", {"ca.crt": "ca2"}, False, True),
    (_CockroachNodeProvider, COCKROACH, "groups", {"g": {}}, False, False),
])
def test_each_input_replaces_restarts_or_updates_the_server(provider, olds, key, value, replaces, restarts):
    news = {**olds, key: value}
    diff = provider().diff("id", olds, news)
    assert diff.changes and diff.delete_before_replace
    assert diff.replaces == ([key] if replaces else [])
    assert provider().must_restart(olds, news) is restarts


@pytest.mark.parametrize("provider, olds", [(_PostgresServerProvider, POSTGRES), (_CockroachNodeProvider, COCKROACH)])
def test_a_new_bootstrap_password_changes_nothing(provider, olds):
    """Vault rotated the admin's password after create: sending the bootstrap one again would undo that."""
    assert not provider().diff("id", olds, {**olds, "admin_password": "second"}).changes


def test_every_input_a_server_records_has_a_meaning_or_is_create_only():
    for provider, olds, create_only in ((_OpenBaoServerProvider, OPENBAO_NODE, set()),
                                        (_PostgresServerProvider, POSTGRES, {"admin_password"}),
                                        (_CockroachNodeProvider, COCKROACH, {"admin_password"})):
        declared = set(provider.replace_inputs) | set(provider.restart_inputs) | set(provider.live_inputs)
        assert declared | create_only == set(olds), provider.__name__
