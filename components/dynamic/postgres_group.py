"""A grant spec's group role (NOLOGIN) on PostgreSQL, created and granted once by the stack.

Dynamic users only join the group (see `components.postgres_sql`). The stack
reaches the server its own way (`components.servers.database_access`: the local
superuser over its Unix socket, or an external server's stack admin), so
managing groups never needs the admin password that Vault rotates.
"""

from typing import Any, Optional

import psycopg
import pulumi
from psycopg import sql
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from components.dynamic.failures import failing_as
from components.grant_specs import GrantSpec, grant_spec_of_props, grant_spec_props
from components.servers.database_access import reached_otherwise, server_props, server_replaces, stack_connection
from components.postgres_sql import GRANT_LOCK, schemas_of
from components.sql_dialects import POSTGRESQL

_SPEC_FIELDS = ("privileges", "schemas", "tables")


def _apply(props: dict[str, Any], revoke_schemas: list[str]) -> None:
    """Creates the group if needed and gives it exactly the spec's privileges, in one transaction."""
    group, database, admin = props["group"], props["database"], props["admin"]
    with failing_as(f"granting group role {group!r} its spec in database {database!r}"), \
            stack_connection(props) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (GRANT_LOCK,))
        conn.execute(POSTGRESQL.create_group_role(group))
        # As the admin, which owns the tables and the default privileges.
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(admin)))
        for statement in [*POSTGRESQL.revoke_statements(revoke_schemas, group, database),
                          *POSTGRESQL.grant_statements(grant_spec_of_props(props), group, database)]:
            # A failure names its statement (the object, privileges and group; no secret in it).
            with failing_as(f"group role {group!r}: {statement}"):
                conn.execute(statement)


def _table_privileges(conn: psycopg.Connection, props: dict[str, Any]) -> tuple[set, set]:
    """(what the group holds, what its spec gives) as {(schema, table, privilege)}, in the schemas
    the spec reaches (the ones `_apply` manages)."""
    spec = grant_spec_of_props(props)
    held = set(conn.execute(
        "SELECT table_schema, table_name, privilege_type FROM information_schema.role_table_grants"
        " WHERE grantee = %s AND table_schema = ANY(%s)", (props["group"], schemas_of(spec))).fetchall())
    tables = {tuple(t.split(".")) for t in spec.tables}
    tables |= set(conn.execute(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = ANY(%s)",
        (list(spec.schemas),)).fetchall())
    return held, {(schema, table, p) for schema, table in tables for p in spec.privileges}


class _PostgresGroupProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        _apply(props, schemas_of(grant_spec_of_props(props)))
        return CreateResult(id_=props["group"], outs={**props, "in_sync": True})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """For `pulumi refresh`: a group dropped by hand is gone from the state (the next up makes it
        again); one whose table privileges differ from its spec is marked out of sync (the next up
        re-applies the spec)."""
        with failing_as(f"reading group role {props['group']!r}"), stack_connection(props) as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (props["group"],)).fetchone():
                return ReadResult(id_=None, outs={})
            held, wanted = _table_privileges(conn, props)
        return ReadResult(id_=id_, outs={**props, "in_sync": held == wanted})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = server_replaces(olds, news) + [
            k for k in ("database", "group", "admin") if olds.get(k) != news.get(k)]
        changed = [k for k in _SPEC_FIELDS if olds.get(k) != news.get(k)]
        drifted = olds.get("in_sync") is False
        return DiffResult(changes=bool(replaces or changed or drifted) or reached_otherwise(olds, news),
                          replaces=replaces,
                          delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        _apply(news, sorted(set(schemas_of(grant_spec_of_props(olds))) | set(schemas_of(grant_spec_of_props(news)))))
        return UpdateResult(outs={**news, "in_sync": True})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        group = props["group"]
        with failing_as(f"dropping group role {group!r}"), stack_connection(props) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (GRANT_LOCK,))
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (group,)).fetchone()
            if exists:
                conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(props["admin"])))
                schemas = schemas_of(grant_spec_of_props(props))
                for statement in POSTGRESQL.revoke_statements(schemas, group, props["database"]):
                    conn.execute(statement)
                conn.execute("RESET ROLE")
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(group)))


class PostgresGroupRole(Resource):
    """The group role of one grant spec, holding exactly its privileges."""

    group: pulumi.Output[str]

    def __init__(
        self, name: str, database: pulumi.Input[str], admin: pulumi.Input[str], group: str, spec: GrantSpec,
        data_dir: pulumi.Input[str] = None, port: pulumi.Input[int] = None, stack_admin: pulumi.Input[dict] = None,
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        """admin: the role that owns the tables, as which the grants are made. data_dir and port: a
        local server; stack_admin: an external one (`components.servers.database_access`)."""
        props = {
            **server_props(data_dir, port, stack_admin), "database": database, "admin": admin, "group": group,
            **grant_spec_props(spec),
        }
        super().__init__(_PostgresGroupProvider(), name, props, opts)
