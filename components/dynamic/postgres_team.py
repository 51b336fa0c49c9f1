"""A team's access to PostgreSQL, made by the platform: the team's Vault connection user (LOGIN,
CONNECT, no CREATEROLE) and the SECURITY DEFINER functions, owned by the stack's admin, through which
alone that user makes, renews and drops the team's users (`components.postgres_sql`'s team part).

The user's first password is given (sent to Vault as the connection's write-only bootstrap password);
Vault rotates it at once, so it is used only here, at create. The functions are made as the admin
(`SET ROLE`), which then owns them; they are made again whenever the team's cap or connection limit
changes. The team's group role is a `PostgresGroupRole` of its own.
"""

from typing import Any, Optional

import pulumi
from psycopg import sql
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.dynamic.failures import failing_as
from components.postgres_sql import (GRANT_LOCK, TeamDatabaseNames, set_password, team_drop_statements,
                                     team_function_statements, team_user_statements)
from components.servers.database_access import reached_otherwise, server_props, server_replaces, stack_connection

#: Changing these makes the functions again (CREATE OR REPLACE); the rest replaces the resource.
_FUNCTION_FIELDS = ("max_ttl", "connection_limit")


def _make_functions(conn, props: dict[str, Any]) -> None:
    names = TeamDatabaseNames(props["team"])
    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(props["admin"])))
    for statement in team_function_statements(names, int(props["max_ttl"]), int(props["connection_limit"])):
        # A failure names the function's statement (no secret in it).
        with failing_as(f"team {props['team']!r}: {statement.splitlines()[0]}"):
            conn.execute(statement)
    conn.execute("RESET ROLE")


class _TeamAccessProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        names = TeamDatabaseNames(props["team"])
        with failing_as(f"making team {props['team']!r}'s connection user {names.user!r} and functions"), \
                stack_connection(props) as conn, conn.transaction():
            # The database's ACL changes beside the group roles': one at a time.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (GRANT_LOCK,))
            for statement in team_user_statements(names, props["database"]):
                conn.execute(statement)
            conn.execute(set_password(names.user, props["password"]))
            _make_functions(conn, props)
        return CreateResult(id_=names.user, outs={**props, "user": names.user, "schema": names.schema})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # The password is absent on purpose: used only at create (Vault owns it afterwards).
        replaces = server_replaces(olds, news) + [
            k for k in ("database", "team", "admin", "group") if olds.get(k) != news.get(k)]
        changed = [k for k in _FUNCTION_FIELDS if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(replaces or changed) or reached_otherwise(olds, news), replaces=replaces,
                          delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        with failing_as(f"making team {news['team']!r}'s functions again"), \
                stack_connection(news) as conn, conn.transaction():
            _make_functions(conn, news)
        return UpdateResult(outs={**news, "user": olds["user"], "schema": olds["schema"]})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        names = TeamDatabaseNames(props["team"])
        with failing_as(f"dropping team {props['team']!r}'s connection user and functions"), \
                stack_connection(props) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (GRANT_LOCK,))
            for statement in team_drop_statements(names, props["database"]):
                conn.execute(statement)


class PostgresTeamAccess(Resource):
    """Team `team`'s connection user (`user`, its first password `password`) and its functions (in
    `schema`), making users in `group` that live at most `max_ttl` seconds."""

    user: pulumi.Output[str]
    schema: pulumi.Output[str]

    def __init__(self, name: str, database: pulumi.Input[str], admin: pulumi.Input[str], team: str,
                 group: pulumi.Input[str], password: pulumi.Input[str], max_ttl: int, connection_limit: int,
                 data_dir: pulumi.Input[str] = None, port: pulumi.Input[int] = None,
                 stack_admin: pulumi.Input[dict] = None, opts: Optional[pulumi.ResourceOptions] = None):
        """admin: the stack's admin (CREATEROLE), which owns the functions. data_dir and port: a local
        server; stack_admin: an external one (`components.servers.database_access`)."""
        TeamDatabaseNames(team)  # A bad name fails here, at preview.
        props = {**server_props(data_dir, port, stack_admin), "database": database, "admin": admin, "team": team,
                 "group": group, "password": pulumi.Output.secret(password), "max_ttl": max_ttl,
                 "connection_limit": connection_limit, "user": None, "schema": None}
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["password"]))
        super().__init__(_TeamAccessProvider(), name, props, opts)
