"""Shared real servers for the integration tests that need Vault's database engine configured."""

import pytest

from components.checks import Target

from tests.support.demo import APP, READER
from tests.support.postgres import create_groups, running_postgres
from tests.support.vault import configure_database_engine, running_openbao

@pytest.fixture(scope="session")
def engine_env():
    """PostgreSQL and OpenBao, the engine configured through the Vault API: (db, vault, clients, target)."""
    with running_postgres() as db, running_openbao() as vault:
        create_groups(db, (READER, APP), "dbcreds_group")
        clients = configure_database_engine(vault, db, (READER, APP))
        target = Target(vault.server.address, vault.ca_pem, "127.0.0.1", db.server.port, db.database,
                        db.ca_file.read_text())
        yield db, vault, clients, target


