"""How the stack's own dynamic providers open the database: one function, two ways in.

- A server the stack runs on this host (props `data_dir` and `port`): its
  superuser over the Unix socket in the data folder, peer-authenticated, no password.
- A server someone else runs (props `stack_admin`: host, port, user, password,
  ca_pem): that role (an RDS-like master: may create roles and owns the
  application's tables) over TCP, TLS verified against ca_pem (verify-full).

Neither is the admin Vault connects as: Vault rotates that one's password.
"""

from typing import Any, Mapping

import psycopg
import pulumi

from components.servers.postgres import superuser_connection
from components.servers.process import pem_file


def stack_connection(props: Mapping[str, Any]) -> psycopg.Connection:
    """A connection (autocommit) to props["database"], the way props say."""
    if props.get("data_dir"):
        return superuser_connection(props["data_dir"], props["port"], props["database"])
    return stack_admin_connection(props["stack_admin"], props["database"])


def stack_admin_connection(admin: Mapping[str, Any], dbname: str) -> psycopg.Connection:
    """The stack admin on dbname over verified TLS (libpq reads the CA only at connect)."""
    with pem_file(admin["ca_pem"]) as ca_file:
        return psycopg.connect(
            host=admin["host"], port=int(admin["port"]), dbname=dbname, user=admin["user"],
            password=admin["password"], sslmode="verify-full", sslrootcert=ca_file, autocommit=True,
            connect_timeout=10)


def _server(props: Mapping[str, Any]) -> tuple:
    admin = props.get("stack_admin") or {}
    return (props.get("data_dir"), *(admin.get(k) for k in ("host", "user", "ca_pem")))


def server_replaces(olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
    """The prop that names another server (the data folder, or the external server's host, stack
    admin or CA), if it changed: what the providers replace on."""
    if _server(olds) == _server(news):
        return []
    return ["data_dir" if news.get("data_dir") else "stack_admin"]


def reached_otherwise(olds: Mapping[str, Any], news: Mapping[str, Any]) -> bool:
    """The same server reached another way: its port, or the stack admin's port or password."""
    return olds.get("port") != news.get("port") or olds.get("stack_admin") != news.get("stack_admin")


def server_props(data_dir: Any = None, port: Any = None, stack_admin: Any = None) -> dict[str, Any]:
    """The props that say how a provider reaches the server: a local one's data folder and port, or
    an external one's stack admin (secret: it holds the password)."""
    if stack_admin is not None:
        return {"stack_admin": pulumi.Output.secret(stack_admin)}
    return {"data_dir": data_dir, "port": port}
