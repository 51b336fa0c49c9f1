"""The SQL dialects the database secrets engine drives, each behind one `Dialect`, found by name.

Both go through Vault's PostgreSQL plugin; only the SQL differs
(`components.postgres_sql`, `components.cockroach_sql`). A dialect owns what
the stack says to its database: the privileges it knows, the statements that
make and grant a group role, Vault's creation and revocation SQL, and the
admin's bootstrap. The providers that run these on a database go through the
dialect, not the SQL module behind it.
"""

from dataclasses import dataclass
from typing import Callable

from psycopg import sql

from components import cockroach_sql, postgres_sql
from components.grant_specs import GrantSpec


@dataclass(frozen=True)
class Dialect:
    #: The stack config's name for it (`db_engine`).
    name: str
    title: str
    #: Every table privilege it knows: a word outside the list is a typo or another dialect's.
    table_privileges: tuple[str, ...]
    #: How Vault's plugin sends a new user's password; None: the plugin's default (the plaintext).
    password_authentication: str | None
    #: (group) -> the statement that makes the group role unless it exists.
    create_group_role: Callable[[str], str]
    #: (spec, group, database) -> what gives the group exactly what the spec allows.
    grant_statements: Callable[[GrantSpec, str, str], list[str]]
    #: (schemas, group, database) -> what takes from the group all that grant_statements could give.
    revoke_statements: Callable[[list[str], str, str], list[str]]
    #: (spec, group) -> Vault's creation SQL for a grant spec's role: a login user in the group, expiring
    #: with its lease, with whatever else of the spec lives in the SQL.
    creation_statements: Callable[[GrantSpec, str], list[str]]
    #: Whether a user's sessions can be capped (a role spec's connection_limit).
    limits_connections: bool
    #: (group) -> Vault's revocation SQL: the user, its sessions and anything it holds, gone.
    revocation_statements: Callable[[str], list[str]]
    #: (admin, database) -> run once as the superuser: the admin Vault connects as, and the database.
    bootstrap_admin_statements: Callable[[str, str], list[sql.Composed]]


POSTGRESQL = Dialect(
    name="postgresql", title="PostgreSQL",
    table_privileges=("SELECT", "INSERT", "UPDATE", "DELETE", "ALL", "TRUNCATE", "REFERENCES", "TRIGGER",
                      "MAINTAIN"),
    # The plugin computes a SCRAM-SHA-256 verifier itself: the database never sees the plaintext
    # and does not hash it inside the plugin's serialised statements.
    password_authentication="scram-sha-256",
    create_group_role=postgres_sql.create_group_role,
    grant_statements=postgres_sql.grant_statements,
    revoke_statements=postgres_sql.revoke_statements,
    creation_statements=postgres_sql.role_creation_statements,
    limits_connections=True,
    # DROP ROLE ends the membership itself: the group is not named.
    revocation_statements=lambda group: postgres_sql.revocation_statements(),
    bootstrap_admin_statements=postgres_sql.bootstrap_admin_statements,
)

COCKROACHDB = Dialect(
    name="cockroachdb", title="CockroachDB",
    table_privileges=("SELECT", "INSERT", "UPDATE", "DELETE", "ALL", "CREATE", "DROP", "ZONECONFIG", "BACKUP",
                      "CHANGEFEED"),
    # The plugin's default: CockroachDB hashes the password it is sent.
    password_authentication=None,
    create_group_role=cockroach_sql.create_group_role,
    grant_statements=cockroach_sql.grant_statements,
    revoke_statements=cockroach_sql.revoke_statements,
    creation_statements=cockroach_sql.role_creation_statements,
    limits_connections=False,
    revocation_statements=cockroach_sql.revocation_statements,
    bootstrap_admin_statements=cockroach_sql.bootstrap_admin_statements,
)

#: Every dialect by its stack config name.
DIALECTS = {d.name: d for d in (POSTGRESQL, COCKROACHDB)}


def dialect_named(name: str) -> Dialect:
    """The dialect of a stack config name, or a ValueError listing the names there are."""
    if name not in DIALECTS:
        raise ValueError(f"no SQL dialect {name!r}: one of {', '.join(DIALECTS)}")
    return DIALECTS[name]
