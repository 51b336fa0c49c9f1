"""A database admin for a Vault connection (a LOGIN, CREATEROLE role, no superuser): a team's own on
the local PostgreSQL, or the stack's on an external one; made the stack's way in
(`components.servers.database_access`: the local superuser, or the external server's stack admin).

Its first password is given (a team's `pulumi_random.RandomPassword`, sent to
Vault as the connection's write-only bootstrap password); Vault rotates it at
once, so it is used only here, at create, and never sent again.
"""

from typing import Any, Optional

import psycopg
import pulumi
from psycopg import sql
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.dynamic.failures import failing_as
from components.servers.database_access import reached_otherwise, server_props, server_replaces, stack_connection
from components.postgres_sql import GRANT_LOCK, admin_role_statements, set_password


class _AdminRoleProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        with failing_as(f"making the admin role {props['username']!r} in database {props['database']!r}"), \
                stack_connection(props) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (GRANT_LOCK,))
            # Only the stack's own server's superuser (reached over its socket) may quiet its logging.
            for statement in admin_role_statements(props["username"], props["database"],
                                                   superuser=bool(props.get("data_dir"))):
                conn.execute(statement)
            conn.execute(set_password(props["username"], props["password"]))
        return CreateResult(id_=props["username"], outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # The password is absent on purpose: used only at create (Vault owns it afterwards).
        replaces = server_replaces(olds, news) + [k for k in ("database", "username") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(replaces) or reached_otherwise(olds, news), replaces=replaces,
                          delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        # Only how the server is reached changed (its port, the stack admin's password).
        return UpdateResult(outs=news)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        # Under the grant lock: a group role dropped beside it updates the same database ACL, and two
        # such updates at once fail ("tuple concurrently updated").
        with failing_as(f"dropping the admin role {props['username']!r}"), \
                stack_connection(props) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (GRANT_LOCK,))
            role, database = sql.Identifier(props["username"]), sql.Identifier(props["database"])
            conn.execute(sql.SQL("DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = {}) THEN "
                                 "EXECUTE {}; END IF; END $$").format(
                sql.Literal(props["username"]),
                sql.Literal(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(database, role).as_string(conn))))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))


class PostgresAdminRole(Resource):
    """`username`: LOGIN, CREATEROLE, pg_signal_backend, CONNECT on the database; `password` its first."""

    username: pulumi.Output[str]

    def __init__(self, name: str, database: pulumi.Input[str], username: str, password: pulumi.Input[str],
                 data_dir: pulumi.Input[str] = None, port: pulumi.Input[int] = None,
                 stack_admin: pulumi.Input[dict] = None, opts: Optional[pulumi.ResourceOptions] = None):
        """data_dir and port: a local server; stack_admin: an external one (`components.servers.database_access`)."""
        props = {**server_props(data_dir, port, stack_admin), "database": database, "username": username,
                 "password": pulumi.Output.secret(password)}
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["password"]))
        super().__init__(_AdminRoleProvider(), name, props, opts)
