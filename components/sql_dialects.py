"""Vault's role statements in the dialect of the database: one place that picks them.

Both dialects go through Vault's PostgreSQL plugin; only the SQL differs
(`components.postgres_sql`, `components.cockroach_sql`). Dialect names are the
keys of `components.grants.DIALECTS`.
"""

from components import cockroach_sql, postgres_sql


def creation_statements(dialect: str, group: str) -> list[str]:
    """A dynamic role's creation SQL: a login role that joins `group`."""
    if dialect == "cockroachdb":
        return cockroach_sql.creation_statements(group)
    return postgres_sql.creation_statements(group)


def revocation_statements(dialect: str, group: str) -> list[str]:
    """A dynamic role's revocation SQL. PostgreSQL's DROP ROLE ends the membership itself;
    CockroachDB revokes it first."""
    if dialect == "cockroachdb":
        return cockroach_sql.revocation_statements(group)
    return postgres_sql.revocation_statements()
