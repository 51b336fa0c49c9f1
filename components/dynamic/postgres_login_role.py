"""A pre-existing service user (a LOGIN role in a grant spec's group) for a Vault static role.

Its first password is random and known to no one: Vault's static role rotates
it as soon as the role is created, and from then on only Vault knows it.
"""

import secrets
from typing import Any, Optional

import psycopg
import pulumi
from psycopg import sql
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.dynamic.failures import failing_as
from components.servers.database_access import reached_otherwise, server_props, server_replaces, stack_connection
from components.postgres_sql import create_service_user


class _LoginRoleProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        with failing_as(f"making the service user {props['username']!r} in group {props['group']!r}"), \
                stack_connection(props) as conn:
            conn.execute(create_service_user(props["username"], props["group"], secrets.token_urlsafe(32)))
        return CreateResult(id_=props["username"], outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = server_replaces(olds, news) + [
            k for k in ("database", "username", "group") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(replaces) or reached_otherwise(olds, news), replaces=replaces,
                          delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        # Only how the server is reached changed.
        return UpdateResult(outs=news)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        with failing_as(f"dropping the service user {props['username']!r}"), stack_connection(props) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(props["username"])))


class PostgresLoginRole(Resource):
    """A LOGIN role in `group`, with a random first password for Vault to rotate."""

    username: pulumi.Output[str]

    def __init__(self, name: str, database: pulumi.Input[str], username: str, group: pulumi.Input[str],
                 data_dir: pulumi.Input[str] = None, port: pulumi.Input[int] = None,
                 stack_admin: pulumi.Input[dict] = None, opts: Optional[pulumi.ResourceOptions] = None):
        """data_dir and port: a local server; stack_admin: an external one (`components.servers.database_access`)."""
        props = {**server_props(data_dir, port, stack_admin), "database": database, "username": username,
                 "group": group}
        super().__init__(_LoginRoleProvider(), name, props, opts)
