"""A real PostgreSQL server for tests: TLS with a throwaway CA, a bootstrapped admin."""

import contextlib
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import psycopg

from tests.support.certs import issue_certificate, make_ca
from components.servers.postgres import LocalPostgres
from components.postgres_sql import (
    DEMO_SCHEMA,
    bootstrap_admin_statements,
    create_group_role,
    grant_statements,
    group_role_name,
    revoke_statements,
    schemas_of,
    set_password,
)
from tests.support.ports import free_port
from toolchain.env import ROOT
from tests.support.processes import remove_data_dir


@dataclass
class TestDatabase:
    server: LocalPostgres
    ca_file: Path
    admin: str
    admin_password: str
    database: str

    def connect(self, user: str, password: str, dbname: str = "", sslmode: str = "verify-full", **kw):
        return psycopg.connect(
            host="127.0.0.1", port=self.server.port, dbname=dbname or self.database, user=user,
            password=password, sslmode=sslmode, sslrootcert=str(self.ca_file), connect_timeout=10, **kw,
        )

    def as_superuser(self, dbname: str = "postgres"):
        return psycopg.connect(self.server.superuser_dsn(dbname), autocommit=True)

    def as_admin(self):
        return self.connect(self.admin, self.admin_password, autocommit=True)


@contextlib.contextmanager
def running_postgres(admin: str = "dbcreds_admin", database: str = "app",
                     bootstrapped: bool = True) -> Iterator[TestDatabase]:
    """A fresh server under .data/tests (reachable by the server's system user), removed afterwards.

    bootstrapped: the admin, database and demo schema made (else a bare cluster).
    """
    data = ROOT / ".data" / "tests" / f"pg-{uuid.uuid4().hex[:8]}"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.parent.chmod(0o755)
    ca = make_ca("test database CA", validity_hours=2)
    cert = issue_certificate(ca["cert_pem"], ca["private_key_pem"], "localhost", ["localhost"],
                             ["127.0.0.1"], server=True, client=False, validity_hours=2)
    server = LocalPostgres(data_dir=data / "pgdata", port=free_port())
    db = TestDatabase(server, data / "ca.crt", admin, secrets.token_urlsafe(24), database)
    try:
        server.initdb(cert["cert_pem"], cert["private_key_pem"])
        db.ca_file.write_text(ca["cert_pem"])
        server.start()
        if bootstrapped:
            with db.as_superuser() as conn:
                for statement in bootstrap_admin_statements(admin, database):
                    conn.execute(statement)
                conn.execute(set_password(admin, db.admin_password))
            with db.as_admin() as conn:
                for statement in DEMO_SCHEMA:
                    conn.execute(statement)
        yield db
    finally:
        server.stop()
        remove_data_dir(data)


def create_groups(db: TestDatabase, specs, prefix: str) -> None:
    """Each spec's group role with its grants, as the admin (the stack does this as the superuser)."""
    with db.as_admin() as conn:
        for spec in specs:
            group = group_role_name(prefix, spec)
            conn.execute(create_group_role(group))
            for statement in revoke_statements(schemas_of(spec), group, db.database):
                conn.execute(statement)
            for statement in grant_statements(spec, group, db.database):
                conn.execute(statement)
