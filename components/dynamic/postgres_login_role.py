"""A pre-existing service user (a LOGIN role in a grant spec's group) for a Vault static role.

Its first password is random and known to no one: Vault's static role rotates
it as soon as the role is created, and from then on only Vault knows it.
"""

import secrets
from typing import Any, Optional

import psycopg
import pulumi
from psycopg import sql
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider

from components.local.postgres import superuser_connection
from components.postgres_sql import create_service_user


def _connect(props: dict[str, Any]) -> psycopg.Connection:
    return superuser_connection(props["data_dir"], props["port"], props["database"])


class _LoginRoleProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        with _connect(props) as conn:
            conn.execute(create_service_user(props["username"], props["group"], secrets.token_urlsafe(32)))
        return CreateResult(id_=props["username"], outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in ("data_dir", "database", "username", "group") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(replaces or olds.get("port") != news.get("port")), replaces=replaces,
                          delete_before_replace=True)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        with _connect(props) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(props["username"])))


class PostgresLoginRole(Resource):
    """A LOGIN role in `group`, with a random first password for Vault to rotate."""

    username: pulumi.Output[str]

    def __init__(self, name: str, data_dir: pulumi.Input[str], port: pulumi.Input[int],
                 database: pulumi.Input[str], username: str, group: pulumi.Input[str],
                 opts: Optional[pulumi.ResourceOptions] = None):
        props = {"data_dir": data_dir, "port": port, "database": database, "username": username, "group": group}
        super().__init__(_LoginRoleProvider(), name, props, opts)
