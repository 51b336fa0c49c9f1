"""CockroachDB statements for Vault's database secrets engine (its PostgreSQL plugin), as pure functions.

The same design as `components.postgres_sql`: each grant spec is a group role
holding the privileges, and a dynamic user only joins it. In CockroachDB that
matters more: GRANT, REVOKE and role membership changes are schema changes,
slow when other transactions hold the leases they wait on (CockroachDB's
guidance on speeding up user and role management). So issuing credentials runs two statements
and never touches a table's privileges, and the cluster lets role memberships
change under running transactions (`bootstrap_admin_statements`).

CockroachDB's differences from PostgreSQL handled here: CREATE USER ... WITH
PASSWORD ... VALID UNTIL without IN ROLE (membership is a separate GRANT), no
CONNECTION LIMIT role option, sessions ended with CANCEL SESSIONS, and a role
dropped only after its membership and privileges are revoked.
"""

from psycopg import sql

from components import postgres_sql
from components.grant_specs import GrantSpec

#: CockroachDB's default database, where the admin and groups are made.
DEFAULT_DATABASE = "defaultdb"


def create_group_role(group: str) -> str:
    """Creates the group role unless it exists (CockroachDB roles are NOLOGIN by default)."""
    return postgres_sql.as_text(sql.SQL("CREATE ROLE IF NOT EXISTS {}").format(sql.Identifier(group)))


def grant_statements(spec: GrantSpec, group: str, database: str) -> list[str]:
    """Gives the group exactly what the spec allows (after `revoke_statements`): PostgreSQL's
    statements, without sequences (CockroachDB's SERIAL draws from unique_rowid(), not a sequence)."""
    return postgres_sql.grant_statements(spec, group, database, sequences=False)


def revoke_statements(schemas: list[str], group: str, database: str) -> list[str]:
    """Takes from the group everything `grant_statements` could have given in these schemas."""
    return postgres_sql.revoke_statements(schemas, group, database, sequences=False)


def creation_statements(group: str) -> list[str]:
    """Vault's creation SQL: a user expiring with its lease, then its membership of the group."""
    return [
        "CREATE USER \"{{name}}\" WITH PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'",
        postgres_sql.as_text(sql.SQL('GRANT {} TO "{{{{name}}}}"').format(sql.Identifier(group))),
    ]


def role_creation_statements(_spec: GrantSpec, group: str) -> list[str]:
    """Vault's creation SQL for a grant spec's dynamic role (no spec setting lives in CockroachDB's:
    it has no CONNECTION LIMIT, and components.grants refuses one for it)."""
    return creation_statements(group)


def revocation_statements(group: str) -> list[str]:
    """Vault's revocation SQL: end the user's sessions, revoke its membership, drop what it owns, drop it.

    CockroachDB refuses to drop a role that still holds privileges; the user
    holds only its membership, revoked first. Every step is a no-op for a user
    already gone, so Vault may retry.
    """
    return [
        "CANCEL SESSIONS IF EXISTS (SELECT session_id FROM [SHOW CLUSTER SESSIONS] WHERE user_name = '{{name}}')",
        postgres_sql.as_text(sql.SQL('REVOKE {} FROM "{{{{name}}}}"').format(sql.Identifier(group))),
        'DROP OWNED BY "{{name}}"',
        'DROP USER IF EXISTS "{{name}}"',
    ]


def bootstrap_admin_statements(admin: str, database: str) -> list[sql.Composed]:
    """Run once as root (client certificate): the admin Vault connects as, and the application database.

    The admin is not in the admin role: CREATEROLE to manage the dynamic users,
    CANCELQUERY and VIEWACTIVITY to end their sessions at revocation, owner of
    the database. Role memberships may change under running transactions
    instead of waiting for their leases. The password is set
    separately (`components.postgres_sql.set_password`), so these hold no secret.
    """
    a, d = sql.Identifier(admin), sql.Identifier(database)
    return [
        sql.SQL("CREATE USER IF NOT EXISTS {} WITH LOGIN CREATEROLE CANCELQUERY VIEWACTIVITY").format(a),
        sql.SQL("CREATE DATABASE IF NOT EXISTS {} OWNER {}").format(d, a),
        sql.SQL("REVOKE CONNECT ON DATABASE {} FROM public").format(d),
        sql.SQL("ALTER ROLE ALL SET allow_role_memberships_to_change_during_transaction = true"),
    ]
