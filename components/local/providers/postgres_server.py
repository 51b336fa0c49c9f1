"""A local PostgreSQL server as a Pulumi resource: its cluster, the admin Vault uses, the app database.

A Python dynamic provider around `components.servers.postgres` (no provider
plugin manages local processes here). The stack administers the server as the
superuser over the Unix socket, with no password; the admin's password is used
once, at create, and Vault rotates it afterwards. So the provider never sends
that password again: a stale bootstrap password in state cannot undo a rotation.

That the process runs is checked at every `pulumi up` by a resource of its own
(`components.servers.server_running`); this one changes only with its inputs.
"""

import time
from pathlib import Path
from typing import Any, Optional

import pulumi
from psycopg import sql
from pulumi.dynamic import CheckFailure, CreateResult, UpdateResult

from components.dynamic.failures import failing_as
from components.local.providers.local_server import LocalDatabaseServer, LocalServerProvider

from components.servers.postgres import PG_BIN, LocalPostgres
from components.servers.process import LOOPBACK
from components.postgres_sql import DEMO_SCHEMA, set_password
from components.sql_dialects import POSTGRESQL


def _server(props: dict[str, Any]) -> LocalPostgres:
    return LocalPostgres(Path(props["data_dir"]), int(props["port"]))


def _outs(props: dict[str, Any], admin_password_version: int) -> dict[str, Any]:
    return {**props, "host": LOOPBACK, "admin_password_version": admin_password_version}


class _PostgresServerProvider(LocalServerProvider):
    server = staticmethod(_server)
    # admin_password is in none of them: it is used only at create.
    replace_inputs = ("data_dir", "admin", "database")
    restart_inputs = ("port",)
    live_inputs = ("cert_pem", "key_pem", "ca_pem")  # Read again at a reload.

    def preflight(self, props: dict[str, Any]) -> list[CheckFailure]:
        if not (PG_BIN / "postgres").exists():
            return [CheckFailure("data_dir", f"no PostgreSQL server binaries in {PG_BIN}: run make bootstrap "
                                             "(or set DBCREDS_PG_BIN)")]
        return []

    def create(self, props: dict[str, Any]) -> CreateResult:
        def build(server: LocalPostgres) -> CreateResult:
            server.initdb(props["cert_pem"], props["key_pem"])
            server.start()
            admin, database, where = props["admin"], props["database"], f"PostgreSQL at {server.data_dir}"
            with failing_as(f"making the admin {admin!r} and database {database!r} of {where}"), \
                    server.superuser() as conn:
                for statement in POSTGRESQL.bootstrap_admin_statements(admin, database):
                    conn.execute(statement)
                conn.execute(set_password(admin, props["admin_password"]))
            with failing_as(f"making the demo tables in database {database!r} of {where}"), \
                    server.superuser(database) as conn:
                # The admin owns the demo tables, so it can grant on them.
                conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(admin)))
                for statement in DEMO_SCHEMA:
                    conn.execute(statement)
            # A new server has a new bootstrap password: Vault's connection must be sent it (and rotate it).
            return CreateResult(id_=str(server.data_dir), outs=_outs(props, int(time.time())))

        return self.create_fresh(props, build)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        old, new = _server(olds), _server(news)
        old.start()
        if self.must_restart(olds, news):  # The port.
            with failing_as(f"moving PostgreSQL at {old.data_dir} to port {int(news['port'])}"), \
                    old.superuser() as conn:
                conn.execute(sql.SQL("ALTER SYSTEM SET port = {}").format(sql.Literal(int(news["port"]))))
            old.stop()
        if (olds["cert_pem"], olds["key_pem"]) != (news["cert_pem"], news["key_pem"]):
            new.install_tls(news["cert_pem"], news["key_pem"])
        new.start()
        new.reload()
        # Keep the password the server was created with: Vault owns it now.
        return UpdateResult(outs=_outs({**news, "admin_password": olds["admin_password"]},
                                       olds["admin_password_version"]))


class LocalPostgresServer(LocalDatabaseServer):
    """A PostgreSQL 15 process on 127.0.0.1 with TLS, its admin and application database."""

    def __init__(
        self, name: str, data_dir: str, port: int, database: str, admin: str,
        admin_password: pulumi.Input[str], ca_pem: pulumi.Input[str], cert_pem: pulumi.Input[str],
        key_pem: pulumi.Input[str], opts: Optional[pulumi.ResourceOptions] = None,
    ):
        props = {
            "data_dir": data_dir, "port": port, "database": database, "admin": admin,
            "admin_password": pulumi.Output.secret(admin_password), "ca_pem": ca_pem,
            "cert_pem": cert_pem, "key_pem": pulumi.Output.secret(key_pem), "host": None,
            "admin_password_version": None,
        }
        opts = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=["admin_password", "key_pem"])
        )
        super().__init__(_PostgresServerProvider(), name, props, opts)
