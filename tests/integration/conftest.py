"""Shared real servers for the integration tests that need Vault's database engine configured."""

import secrets

import pytest

from components.checks import Target
from components.postgres_sql import create_service_user, group_role_name

from tests.support.demo import APP, READER, SERVICE_USER
from tests.support.postgres import create_groups, running_postgres
from tests.support.vault import configure_database_engine, running_openbao

@pytest.fixture(scope="session")
def engine_env():
    """PostgreSQL and OpenBao, the engine configured through the Vault API: (db, vault, clients, target)."""
    with running_postgres() as db, running_openbao() as vault:
        create_groups(db, (READER, APP), "dbcreds_group")
        with db.as_superuser(db.database) as conn:
            conn.execute(create_service_user(SERVICE_USER.username, group_role_name("dbcreds_group", READER),
                                             secrets.token_urlsafe(24)))
        clients = configure_database_engine(vault, db, (READER, APP), service_users=(SERVICE_USER,))
        target = Target(vault.server.address, vault.ca_pem, "127.0.0.1", db.server.port, db.database,
                        db.ca_file.read_text())
        yield db, vault, clients, target


