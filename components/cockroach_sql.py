"""CockroachDB statements for Vault's database secrets engine (its PostgreSQL plugin), as pure functions.

The same design as `components.postgres_sql`: each grant spec is a group role
holding the privileges, and a dynamic user only joins it. In CockroachDB that
matters more: GRANT, REVOKE and role membership changes are schema changes,
slow when other transactions hold the leases they wait on (seed 001, "How to
speed up user/role management"). So issuing credentials runs two statements
and never touches a table's privileges, and the cluster lets role memberships
change under running transactions (`bootstrap_admin_statements`).

CockroachDB's differences from PostgreSQL handled here: CREATE USER ... WITH
PASSWORD ... VALID UNTIL without IN ROLE (membership is a separate GRANT), no
CONNECTION LIMIT role option, sessions ended with CANCEL SESSIONS, and a role
dropped only after its membership and privileges are revoked.
"""

from psycopg import sql

from components.grants import GrantSpec
from components.postgres_sql import schemas_of

#: CockroachDB's default database, where the admin and groups are made.
DEFAULT_DATABASE = "defaultdb"


def _text(composed: sql.Composable) -> str:
    return composed.as_string(None)


def create_group_role(group: str) -> str:
    """Creates the group role unless it exists (CockroachDB roles are NOLOGIN by default)."""
    return _text(sql.SQL("CREATE ROLE IF NOT EXISTS {}").format(sql.Identifier(group)))


def grant_statements(spec: GrantSpec, group: str, database: str) -> list[str]:
    """Gives the group exactly what the spec allows (after `revoke_statements`)."""
    g, privileges = sql.Identifier(group), sql.SQL(", ").join(sql.SQL(p) for p in spec.privileges)
    statements = [sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), g)]
    for schema in schemas_of(spec):
        statements.append(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), g))
    for schema in spec.schemas:
        s = sql.Identifier(schema)
        statements.append(sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA {} TO {}").format(privileges, s, g))
        statements.append(
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT {} ON TABLES TO {}").format(s, privileges, g)
        )
    for table in spec.tables:
        statements.append(
            sql.SQL("GRANT {} ON TABLE {} TO {}").format(privileges, sql.Identifier(*table.split(".")), g)
        )
    return [_text(s) for s in statements]


def revoke_statements(schemas: list[str], group: str, database: str) -> list[str]:
    """Takes from the group everything `grant_statements` could have given in these schemas."""
    g = sql.Identifier(group)
    statements = []
    for schema in sorted(set(schemas)):
        s = sql.Identifier(schema)
        statements += [
            sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(s, g),
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} REVOKE ALL ON TABLES FROM {}").format(s, g),
            sql.SQL("REVOKE USAGE ON SCHEMA {} FROM {}").format(s, g),
        ]
    statements.append(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(sql.Identifier(database), g))
    return [_text(s) for s in statements]


def creation_statements(group: str) -> list[str]:
    """Vault's creation SQL: a user expiring with its lease, then its membership of the group."""
    return [
        "CREATE USER \"{{name}}\" WITH PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'",
        _text(sql.SQL('GRANT {} TO "{{{{name}}}}"').format(sql.Identifier(group))),
    ]


def revocation_statements(group: str) -> list[str]:
    """Vault's revocation SQL: end the user's sessions, revoke its membership, drop what it owns, drop it.

    CockroachDB refuses to drop a role that still holds privileges; the user
    holds only its membership, revoked first. Every step is a no-op for a user
    already gone, so Vault may retry.
    """
    return [
        "CANCEL SESSIONS IF EXISTS (SELECT session_id FROM [SHOW CLUSTER SESSIONS] WHERE user_name = '{{name}}')",
        _text(sql.SQL('REVOKE {} FROM "{{{{name}}}}"').format(sql.Identifier(group))),
        'DROP OWNED BY "{{name}}"',
        'DROP USER IF EXISTS "{{name}}"',
    ]


def bootstrap_admin_statements(admin: str, database: str) -> list[sql.Composed]:
    """Run once as root (client certificate): the admin Vault connects as, and the application database.

    The admin is not in the admin role: CREATEROLE to manage the dynamic users,
    CANCELQUERY and VIEWACTIVITY to end their sessions at revocation, owner of
    the database. Role memberships may change under running transactions
    instead of waiting for their leases (seed 001). The password is set
    separately (`components.postgres_sql.set_password`), so these hold no secret.
    """
    a, d = sql.Identifier(admin), sql.Identifier(database)
    return [
        sql.SQL("CREATE USER IF NOT EXISTS {} WITH LOGIN CREATEROLE CANCELQUERY VIEWACTIVITY").format(a),
        sql.SQL("CREATE DATABASE IF NOT EXISTS {} OWNER {}").format(d, a),
        sql.SQL("REVOKE CONNECT ON DATABASE {} FROM public").format(d),
        sql.SQL("ALTER ROLE ALL SET allow_role_memberships_to_change_during_transaction = true"),
    ]
