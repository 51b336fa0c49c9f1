"""The validation of a dynamic database role's grant spec and of the client that uses it.

A grant spec says what a client's credentials may do: which privileges, on
which schemas (all their tables) or tables, and for how long (TTLs). A client
spec says who uses one: an AppRole login with bounded token and secret_id
lifetimes, and the statements the post-deploy checks run with its credentials.
Both are validated by pure functions, so a wrong spec fails at preview with an
error that names the field. The types themselves are in `components.grant_specs`.
"""

import re
from typing import Any, Mapping

from pulumi import RunError

from components.grant_specs import CONNECTION_LIMIT, ClientSpec, GrantSpec
# Not used here: the stack config reads it from this module with the other spec types.
from components.grant_specs import ServiceUser  # noqa: F401
from components.sql_dialects import POSTGRESQL, Dialect

#: Table privileges a dynamic role may hold, in either dialect. Anything wider
#: (ALL, TRUNCATE, DROP, ZONECONFIG...) or role-level (SUPERUSER, CREATEROLE...) is refused.
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")

#: Vault role names become part of generated usernames and of SQL identifiers.
ROLE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
#: Client names become Vault policy and AppRole role names.
CLIENT_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
#: No user of a dynamic role may hold more sessions at once (PostgreSQL's default max_connections).
MAX_CONNECTION_LIMIT = 100
#: A client's secret_id lives at most this long (Vault's 0, "never expires", is refused).
MAX_SECRET_ID_TTL = 30 * 86400
#: A PostgreSQL schema or table name we accept unquoted-safe: letters, digits, underscore.
SQL_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: A Kubernetes service account or namespace a client's pods log in with: an RFC 1123 label (no glob).
K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

#: The database's own schemas besides every pg_* one (pg_catalog, pg_toast, pg_temp_N, pg_toast_temp_N:
#: PostgreSQL reserves the prefix for them): no grant spec reaches into them. The stack's admin may not
#: grant there (the up would fail), and no client needs the catalog's tables.
SYSTEM_SCHEMAS = ("information_schema", "crdb_internal")
_SYSTEM = "one of the database's system schemas (pg_catalog, information_schema, pg_toast, pg_temp*): " \
          "a role reaches the application's schemas only"

_TTL_PART = re.compile(r"(\d+)([smhd])")
_TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class SpecError(RunError, ValueError):
    """A grant spec value is wrong; `field` is the dotted path of the value.

    A RunError: a team's program that validates its specs (examples/) fails with one `error:` line."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field


def parse_ttl(value: Any, field: str) -> int:
    """Seconds from a TTL such as "90s", "30m", "1h30m", "7d" or a whole number of seconds."""
    if isinstance(value, bool):
        raise SpecError(field, f"is not a duration: {value!r}")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and value.isdigit():
        seconds = int(value)
    elif isinstance(value, str) and value and _TTL_PART.sub("", value) == "":
        parts = _TTL_PART.findall(value)
        seconds = sum(int(n) * _TTL_UNITS[unit] for n, unit in parts)
    else:
        raise SpecError(field, f"is not a duration like 90s, 30m, 1h30m or 7d: {value!r}")
    if seconds <= 0:
        raise SpecError(field, f"must be longer than zero: {value!r}")
    return seconds


def system_schema(schema: str) -> bool:
    """Whether schema is one of the database's own (its catalog, toast or temporary schemas...)."""
    return schema.startswith("pg_") or schema in SYSTEM_SCHEMAS


def _names(raw: Any, field: str) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, (list, tuple)) or not all(isinstance(n, str) for n in raw):
        raise SpecError(field, f"must be a list of names, got {raw!r}")
    if len(set(raw)) != len(raw):
        raise SpecError(field, f"lists a name twice: {list(raw)!r}")
    return list(raw)


def _check_privilege(privilege: str, dialect: Dialect, field: str) -> None:
    word = privilege.upper()
    if word not in dialect.table_privileges:
        raise SpecError(field, f"{privilege!r} is not a {dialect.title} table privilege")
    if word not in TABLE_PRIVILEGES:
        raise SpecError(field, f"{privilege!r} is wider than a dynamic role may hold: "
                               f"use {', '.join(TABLE_PRIVILEGES)}")


def validate_grant_spec(
    name: str, raw: Mapping[str, Any], max_ttl_cap: int, dialect: Dialect = POSTGRESQL, field: str = "roles",
) -> GrantSpec:
    """A GrantSpec from raw stack config, or a SpecError naming the field; privileges are checked
    against the dialect's."""
    here = f"{field}.{name}"
    if not isinstance(name, str) or not ROLE_NAME.match(name):
        raise SpecError(here, "role names are 1 to 16 of a-z, 0-9 and -, starting with a letter")
    if not isinstance(raw, Mapping):
        raise SpecError(here, f"must be a mapping, got {raw!r}")
    unknown = set(raw) - {"privileges", "schemas", "tables", "default_ttl", "max_ttl", "connection_limit"}
    if unknown:
        raise SpecError(f"{here}.{sorted(unknown)[0]}", "is not a grant spec field")

    privileges = _names(raw.get("privileges"), f"{here}.privileges")
    if not privileges:
        raise SpecError(f"{here}.privileges", "must list at least one privilege")
    for privilege in privileges:
        _check_privilege(privilege, dialect, f"{here}.privileges")

    schemas = _names(raw.get("schemas"), f"{here}.schemas")
    for schema in schemas:
        if not SQL_NAME.match(schema):
            raise SpecError(f"{here}.schemas", f"{schema!r} is not a plain schema name (a-z, 0-9, _)")
        if system_schema(schema):
            raise SpecError(f"{here}.schemas", f"{schema!r} is {_SYSTEM}")
    tables = _names(raw.get("tables"), f"{here}.tables")
    for table in tables:
        parts = table.split(".")
        if len(parts) != 2 or not all(SQL_NAME.match(p) for p in parts):
            raise SpecError(f"{here}.tables", f"{table!r} is not schema.table with plain names (a-z, 0-9, _)")
        if system_schema(parts[0]):
            raise SpecError(f"{here}.tables", f"{table!r} is in {parts[0]}, {_SYSTEM}")
    if not schemas and not tables:
        raise SpecError(here, "grants nothing: give schemas or tables")

    default_ttl = parse_ttl(raw.get("default_ttl", "1h"), f"{here}.default_ttl")
    max_ttl = parse_ttl(raw.get("max_ttl", "24h"), f"{here}.max_ttl")
    if default_ttl > max_ttl:
        raise SpecError(f"{here}.default_ttl", f"{default_ttl}s is longer than max_ttl {max_ttl}s")
    if max_ttl > max_ttl_cap:
        raise SpecError(f"{here}.max_ttl", f"{max_ttl}s is longer than this environment's cap of {max_ttl_cap}s")

    connection_limit = raw.get("connection_limit", CONNECTION_LIMIT)
    whole = isinstance(connection_limit, int) and not isinstance(connection_limit, bool)
    if not whole or not 1 <= connection_limit <= MAX_CONNECTION_LIMIT:
        raise SpecError(f"{here}.connection_limit", f"must be a whole number of sessions from 1 to "
                                                    f"{MAX_CONNECTION_LIMIT}, got {connection_limit!r}")
    if "connection_limit" in raw and not dialect.limits_connections:
        raise SpecError(f"{here}.connection_limit", f"{dialect.title} cannot cap a user's sessions: remove it")

    return GrantSpec(
        name=name,
        privileges=tuple(sorted({p.upper() for p in privileges}, key=TABLE_PRIVILEGES.index)),
        schemas=tuple(schemas),
        tables=tuple(tables),
        default_ttl=default_ttl,
        max_ttl=max_ttl,
        connection_limit=connection_limit,
    )


def _statements(raw: Any, field: str) -> tuple[str, ...]:
    if not isinstance(raw, (list, tuple)) or not raw or not all(isinstance(s, str) and s.strip() for s in raw):
        raise SpecError(field, "must list at least one SQL statement")
    return tuple(raw)


def validate_client_spec(name: str, raw: Mapping[str, Any], roles: Mapping[str, GrantSpec], max_ttl_cap: int,
                         field: str = "clients") -> ClientSpec:
    """A ClientSpec from raw stack config, or a SpecError naming the field.

    roles are the validated grant specs by name; no token outlives max_ttl_cap.
    """
    here = f"{field}.{name}"
    if not isinstance(name, str) or not CLIENT_NAME.match(name):
        raise SpecError(here, "client names are 1 to 31 of a-z, 0-9 and -, starting with a letter")
    if not isinstance(raw, Mapping):
        raise SpecError(here, f"must be a mapping, got {raw!r}")
    unknown = set(raw) - {"role", "token_ttl", "token_max_ttl", "secret_id_ttl", "allowed", "forbidden",
                          "service_accounts", "namespaces"}
    if unknown:
        raise SpecError(f"{here}.{sorted(unknown)[0]}", "is not a client field")
    if raw.get("role") not in roles:
        raise SpecError(f"{here}.role", f"must name one of the roles: {', '.join(sorted(roles))}")
    token_ttl = parse_ttl(raw.get("token_ttl", "15m"), f"{here}.token_ttl")
    token_max_ttl = parse_ttl(raw.get("token_max_ttl", "1h"), f"{here}.token_max_ttl")
    if token_ttl > token_max_ttl:
        raise SpecError(f"{here}.token_ttl", f"{token_ttl}s is longer than token_max_ttl {token_max_ttl}s")
    if token_max_ttl > max_ttl_cap:
        raise SpecError(f"{here}.token_max_ttl",
                        f"{token_max_ttl}s is longer than this environment's cap of {max_ttl_cap}s")
    secret_id_ttl = parse_ttl(raw.get("secret_id_ttl", "24h"), f"{here}.secret_id_ttl")
    if secret_id_ttl > MAX_SECRET_ID_TTL:
        raise SpecError(f"{here}.secret_id_ttl", f"{secret_id_ttl}s is longer than {MAX_SECRET_ID_TTL}s")
    service_accounts, namespaces = _kubernetes_login(raw, here)
    # A lease dies with the token that took it: a pod's token must live until its lease's max_ttl,
    # or the credentials end early (and are replaced) at every login.
    max_ttl = roles[raw["role"]].max_ttl
    if service_accounts and token_max_ttl < max_ttl:
        raise SpecError(f"{here}.token_max_ttl", f"{token_max_ttl}s ends before role {raw['role']!r}'s max_ttl "
                                                 f"{max_ttl}s: a pod's lease dies with its token, so a client that "
                                                 f"logs in with Kubernetes needs token_max_ttl >= max_ttl")
    return ClientSpec(
        name=name, role=raw["role"], token_ttl=token_ttl, token_max_ttl=token_max_ttl, secret_id_ttl=secret_id_ttl,
        allowed=_statements(raw.get("allowed"), f"{here}.allowed"),
        forbidden=_statements(raw.get("forbidden"), f"{here}.forbidden"),
        service_accounts=service_accounts, namespaces=namespaces,
    )


def _kubernetes_login(raw: Mapping[str, Any], here: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A client's service accounts and namespaces: both or neither, each a non-empty list of names
    (never a glob: Kubernetes auth would take `*` for any)."""
    given = [key for key in ("service_accounts", "namespaces") if raw.get(key) is not None]
    if len(given) == 1:
        missing = ({"service_accounts", "namespaces"} - set(given)).pop()
        raise SpecError(f"{here}.{missing}", f"must be given with {given[0]}: a pod logs in with a service account "
                                             f"of one of the namespaces")
    found = []
    for key in ("service_accounts", "namespaces"):
        names = _names(raw.get(key), f"{here}.{key}")
        if given and not names:
            raise SpecError(f"{here}.{key}", "must list at least one name")
        for value in names:
            if not K8S_NAME.match(value):
                raise SpecError(f"{here}.{key}", f"{value!r} is not a Kubernetes name (a DNS label: a-z, 0-9 and "
                                                 f"-, at most 63; no '*': list each one)")
        found.append(tuple(names))
    return found[0], found[1]


def validate_clients(raw: Any, roles: Mapping[str, GrantSpec], max_ttl_cap: int) -> tuple[ClientSpec, ...]:
    """Every client of a stack: each reads its own role, so no two share one."""
    if not isinstance(raw, Mapping):
        raise SpecError("clients", "must map each client's name to {role, allowed, forbidden, ...}")
    clients = tuple(validate_client_spec(name, spec, roles, max_ttl_cap) for name, spec in raw.items())
    readers: dict[str, str] = {}
    for client in clients:
        if client.role in readers:
            raise SpecError(f"clients.{client.name}.role", f"role {client.role!r} is already read by client "
                                                           f"{readers[client.role]!r}: each client reads its own")
        readers[client.role] = client.name
    return clients
