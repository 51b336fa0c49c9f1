"""PostgreSQL statements for Vault's database secrets engine, as pure functions.

Each grant spec becomes a group role (NOLOGIN) that the stack creates and
grants once. A dynamic role's creation SQL only creates a login role IN ROLE
that group, so issuing credentials never rewrites a table's privileges:
concurrent GRANTs on one table fail with "tuple concurrently updated", and a
burst of issuances right after an unseal hits exactly that. Revocation then
needs no per-table REVOKE either.

Identifiers are quoted by psycopg.sql. Vault's own placeholders ({{name}},
{{password}}, {{expiration}}) stay in the text for Vault to fill; the names
Vault generates come from `username_template` and hold only [a-z0-9_].
"""

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from psycopg import sql

from components.defaults import TEAM_PREFIX
from components.grant_specs import CONNECTION_LIMIT, GrantSpec

#: PostgreSQL's limit on identifiers (NAMEDATALEN - 1), in bytes.
MAX_IDENTIFIER_BYTES = 63

# Parts of a generated username: v_<role>_<random>_<unix time>.
USERNAME_PREFIX = "v"
ROLE_PART_MAX = 16
RANDOM_PART = 20
UNIX_TIME_DIGITS = 10  # Until the year 2286.
#: Pulumi applies role changes in parallel, and concurrent GRANTs on one object (the database's
#: CONNECT, say) fail with "tuple concurrently updated": each such change takes this lock first.
GRANT_LOCK = 0x64626372  # "dbcr"
#: The users that dynamic roles made (service users may not start with the prefix), in both dialects.
DYNAMIC_USERS_QUERY = f"SELECT rolname FROM pg_roles WHERE rolname LIKE '{USERNAME_PREFIX}\\_%'"
#: How long past its VALID UNTIL a dynamic user is left to Vault before it counts as expired: Vault
#: revokes an expired lease itself within seconds, a renewal in flight moves VALID UNTIL within one, and
#: Vault's clock and the database's may differ by a few seconds.
EXPIRED_GRACE_SECONDS = 30


def expired_dynamic_users_query(grace_seconds: int = EXPIRED_GRACE_SECONDS) -> str:
    """The dynamic users whose VALID UNTIL passed more than grace_seconds ago, by the database's clock.

    The creation SQL sets VALID UNTIL to the lease's end and every renewal moves it (the roles set no
    renew statements, so Vault's plugin runs its default `ALTER ROLE ... VALID UNTIL '{{expiration}}'`):
    no lease can still hold such a user. A user without VALID UNTIL (NULL) is never listed. The same
    text runs on CockroachDB, whose pg_roles has rolvaliduntil too.
    """
    if isinstance(grace_seconds, bool) or not isinstance(grace_seconds, int) or grace_seconds < 0:
        raise ValueError(f"grace_seconds must be a whole number of seconds >= 0, got {grace_seconds!r}")
    return (f"{DYNAMIC_USERS_QUERY} AND rolvaliduntil < now() - INTERVAL '{grace_seconds} seconds' "
            "ORDER BY rolname")


def as_text(composed: sql.Composable) -> str:
    """A composed statement as text (identifiers quoted, literals escaped) for Vault or a script."""
    return composed.as_string(None)


def group_role_name(prefix: str, spec: GrantSpec) -> str:
    """The NOLOGIN role that holds a grant spec's privileges."""
    name = f"{prefix}_{spec.name.replace('-', '_')}"
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise ValueError(f"group role name {name!r} is over {MAX_IDENTIFIER_BYTES} bytes")
    return name


def schemas_of(spec: GrantSpec) -> list[str]:
    """Every schema the spec reaches, in a stable order (what `revoke_statements` must cover)."""
    return sorted(set(spec.schemas) | {t.split(".")[0] for t in spec.tables})


def create_group_role(group: str) -> str:
    """Creates the group role unless it exists (re-running it is harmless)."""
    create = as_text(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group)))
    return f"DO $$ BEGIN {create}; EXCEPTION WHEN duplicate_object THEN NULL; END $$"


def grant_statements(spec: GrantSpec, group: str, database: str, sequences: bool = True) -> list[str]:
    """Gives the group exactly what the spec allows (after `revoke_statements`).

    sequences: also USAGE on the schemas' sequences when the spec inserts.
    """
    g, privileges = sql.Identifier(group), sql.SQL(", ").join(sql.SQL(p) for p in spec.privileges)
    statements = [sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), g)]
    for schema in schemas_of(spec):
        statements.append(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), g))
    for schema in spec.schemas:
        s = sql.Identifier(schema)
        statements.append(sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA {} TO {}").format(privileges, s, g))
        # Tables the admin creates later in the schema get the same privileges.
        statements.append(
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT {} ON TABLES TO {}").format(s, privileges, g)
        )
    for table in spec.tables:
        t = sql.Identifier(*table.split("."))
        statements.append(sql.SQL("GRANT {} ON TABLE {} TO {}").format(privileges, t, g))
    if sequences and "INSERT" in spec.privileges:
        # serial and identity columns draw from sequences: inserting needs USAGE on them.
        for schema in schemas_of(spec):
            statements.append(
                sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(sql.Identifier(schema), g)
            )
    return [as_text(s) for s in statements]


def revoke_statements(schemas: list[str], group: str, database: str, sequences: bool = True) -> list[str]:
    """Takes from the group everything `grant_statements` could have given in these schemas."""
    g = sql.Identifier(group)
    statements = []
    for schema in sorted(set(schemas)):
        s = sql.Identifier(schema)
        statements.append(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(s, g))
        if sequences:
            statements.append(sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(s, g))
        statements += [
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} REVOKE ALL ON TABLES FROM {}").format(s, g),
            sql.SQL("REVOKE USAGE ON SCHEMA {} FROM {}").format(s, g),
        ]
    statements.append(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(sql.Identifier(database), g))
    return [as_text(s) for s in statements]


def creation_statements(group: str, connection_limit: int = CONNECTION_LIMIT) -> list[str]:
    """Vault's creation SQL for a dynamic role: a login role in the group, expiring with its lease,
    holding at most connection_limit sessions."""
    return [
        as_text(
            sql.SQL(
                "CREATE ROLE \"{{{{name}}}}\" WITH LOGIN PASSWORD '{{{{password}}}}' "
                "VALID UNTIL '{{{{expiration}}}}' CONNECTION LIMIT {} IN ROLE {}"
            ).format(sql.Literal(connection_limit), sql.Identifier(group))
        )
    ]


def role_creation_statements(spec: GrantSpec, group: str) -> list[str]:
    """Vault's creation SQL for the dynamic role of a grant spec, whose group role is `group`: the
    spec's settings that live in the SQL are read here, and only here."""
    return creation_statements(group, spec.connection_limit)


def revocation_statements() -> list[str]:
    """Vault's revocation SQL, one block: end the user's sessions; if it owns or was granted anything
    (an entry in pg_shdepend), take over what it owns and drop what it was granted; drop the role.

    The admin is no superuser, so it first joins the user's role: REASSIGN and
    DROP OWNED need that. A user made by the creation SQL holds privileges only
    through its group and cannot create objects, so it normally has no such
    entry and the block skips the costly steps; one given something by hand
    still goes. Every step is a no-op for a role already gone, so Vault may
    retry.
    """
    return [
        "DO $$ BEGIN "
        "PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}'; "
        "IF EXISTS (SELECT FROM pg_shdepend d JOIN pg_roles r ON d.refclassid = 'pg_authid'::regclass "
        "AND d.refobjid = r.oid WHERE r.rolname = '{{name}}') THEN "
        "EXECUTE format('GRANT %I TO CURRENT_USER', '{{name}}'); "
        "EXECUTE format('REASSIGN OWNED BY %I TO CURRENT_USER', '{{name}}'); "
        "EXECUTE format('DROP OWNED BY %I', '{{name}}'); "
        "END IF; "
        "EXECUTE format('DROP ROLE IF EXISTS %I', '{{name}}'); "
        "END $$",
    ]


#: A user the username template made: safe to put in SQL as it is.
DYNAMIC_USER_NAME = re.compile(rf"^{USERNAME_PREFIX}_[a-z0-9_]{{1,61}}$")


def drop_dynamic_user_statements(users: list[str]) -> list[str]:
    """The revocation SQL Vault runs, for dynamic users no lease holds any more (their lease was never
    recorded, or was lost): one block per user, run as an admin."""
    for user in users:
        if not DYNAMIC_USER_NAME.match(user):
            raise ValueError(f"{user!r} is no dynamic user's name")
    return [statement.replace("{{name}}", user) for user in users for statement in revocation_statements()]


def username_template() -> str:
    """Vault's username_template: v_<role>_<20 random>_<unix time>, lower case.

    Unique per issuance (random and time) and never longer than
    `max_username_bytes()`, which callers check against PostgreSQL's limit.
    """
    return (
        f'{{{{ printf "{USERNAME_PREFIX}_%s_%s_%s" (.RoleName | truncate {ROLE_PART_MAX}) '
        f"(random {RANDOM_PART}) (unix_time) | replace \"-\" \"_\" | lowercase }}}}"
    )


def max_username_bytes() -> int:
    """The longest name `username_template()` can render: every part at its maximum."""
    separators = 3
    return len(USERNAME_PREFIX) + ROLE_PART_MAX + RANDOM_PART + UNIX_TIME_DIGITS + separators


#: What each dynamic user holds beyond its group: attributes, memberships, and privileges granted to
#: it directly (on tables, columns, schemas, databases). The catalogs are readable by every user, so
#: any dynamic user's session can run it.
DYNAMIC_USER_HOLDINGS_QUERY = f"""
SELECT r.rolname,
  array_remove(ARRAY[
    CASE WHEN r.rolsuper THEN 'SUPERUSER' END, CASE WHEN r.rolcreaterole THEN 'CREATEROLE' END,
    CASE WHEN r.rolcreatedb THEN 'CREATEDB' END, CASE WHEN r.rolreplication THEN 'REPLICATION' END,
    CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END], NULL) AS attributes,
  ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
        WHERE m.member = r.oid ORDER BY 1) AS member_of,
  ARRAY(
    SELECT format('%s ON TABLE %I.%I', a.privilege_type, n.nspname, c.relname)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN LATERAL aclexplode(c.relacl) a
      WHERE a.grantee = r.oid
    UNION ALL SELECT format('%s (%I) ON TABLE %I.%I', a.privilege_type, t.attname, n.nspname, c.relname)
      FROM pg_attribute t JOIN pg_class c ON c.oid = t.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      CROSS JOIN LATERAL aclexplode(t.attacl) a WHERE a.grantee = r.oid
    UNION ALL SELECT format('%s ON SCHEMA %I', a.privilege_type, n.nspname)
      FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a WHERE a.grantee = r.oid
    UNION ALL SELECT format('%s ON DATABASE %I', a.privilege_type, d.datname)
      FROM pg_database d CROSS JOIN LATERAL aclexplode(d.datacl) a WHERE a.grantee = r.oid
    ORDER BY 1) AS privileges
FROM pg_roles r WHERE r.rolname LIKE '{USERNAME_PREFIX}\\_%' ORDER BY 1
"""

#: PostgreSQL's counters an operator watches, for the session's database: its sessions against
#: max_connections, the dynamic users that exist (against Vault's lease count: more users than leases
#: is a leak), and commits, rollbacks and deadlocks since its statistics were reset. pg_stat_database,
#: pg_roles and the setting are readable by every user.
DATABASE_COUNTERS_QUERY = f"""
SELECT d.numbackends, current_setting('max_connections')::int,
  (SELECT count(*) FROM pg_roles WHERE rolname LIKE '{USERNAME_PREFIX}\\_%'),
  d.xact_commit, d.xact_rollback, d.deadlocks
FROM pg_stat_database d WHERE d.datname = current_database()
"""
DATABASE_COUNTERS = ("connections", "max_connections", "dynamic_users", "commits", "rollbacks", "deadlocks")


def database_counters(row: Sequence[Any]) -> tuple[str, dict[str, int]]:
    """DATABASE_COUNTERS_QUERY's row by name, and what is wrong with it (empty: nothing). It is read
    in a dynamic user's own session, so there is at least that session and that user."""
    counters = dict(zip(DATABASE_COUNTERS, (int(value) for value in row)))
    problems = [f"{name} is {counters[name]}, yet the reading session is one"
                for name in ("connections", "dynamic_users") if counters[name] < 1]
    if counters["connections"] > counters["max_connections"]:
        problems.append(f"{counters['connections']} sessions over max_connections {counters['max_connections']}")
    return "; ".join(problems), counters


_USERNAME = re.compile(rf"^{USERNAME_PREFIX}_(?P<role>[a-z0-9_]{{1,{ROLE_PART_MAX}}})_[a-z0-9]{{{RANDOM_PART}}}_[0-9]+$")


def role_of_username(username: str) -> str | None:
    """The role part of a name `username_template()` rendered (hyphens as underscores), else None."""
    match = _USERNAME.match(username)
    return match.group("role") if match else None


def dynamic_user_excess(rows: Iterable[Sequence], groups: Mapping[str, str]) -> list[str]:
    """What dynamic users hold beyond membership in their own role's group, one line per user.

    rows: `DYNAMIC_USER_HOLDINGS_QUERY`'s (name, attributes, member_of, privileges).
    groups: each dynamic role's group role. Users of other roles (another stack's) are not judged.
    """
    by_username_part = {role.replace("-", "_"): (role, group) for role, group in groups.items()}
    found = []
    for name, attributes, member_of, privileges in rows:
        if role_of_username(name) not in by_username_part:
            continue
        role, group = by_username_part[role_of_username(name)]
        problems = [f"{attribute}" for attribute in attributes]
        problems += [f"membership of {other}" for other in member_of if other != group]
        problems += list(privileges)
        if group not in member_of:
            problems.append(f"no membership of its group {group}")
        if problems:
            found.append(f"{name} of role {role} holds beyond its grants: {', '.join(problems)}")
    return found


def bootstrap_admin_statements(admin: str, database: str) -> list[sql.Composed]:
    """Run once as the superuser: the admin Vault connects as, and the application database.

    The admin is no superuser: CREATEROLE to create and drop the dynamic users,
    pg_signal_backend to end their sessions at revocation, owner of the
    database (and so of its public schema). Vault rotates its password at once.
    The password is set separately (`set_password`), so these statements hold no secret.
    """
    a, d = sql.Identifier(admin), sql.Identifier(database)
    return [
        *_admin_role(admin),
        *statement_text_unlogged(admin),
        sql.SQL("CREATE DATABASE {} OWNER {}").format(d, a),
        # Only roles granted CONNECT (the admin as owner, the groups) may connect.
        sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(d),
    ]


def _admin_role(admin: str) -> list[sql.Composed]:
    a = sql.Identifier(admin)
    return [
        sql.SQL("CREATE ROLE {} WITH LOGIN CREATEROLE NOSUPERUSER NOCREATEDB NOREPLICATION NOBYPASSRLS").format(a),
        sql.SQL("GRANT pg_signal_backend TO {}").format(a),
    ]


def admin_role_statements(admin: str, database: str, superuser: bool = True) -> list[sql.Composed]:
    """Another admin, for a Vault connection to an existing database (CREATEROLE, pg_signal_backend,
    CONNECT; no superuser, owns nothing). Its sessions' statements go unlogged only when a superuser
    runs these (`superuser`): no one else may set that."""
    return [*_admin_role(admin), *(statement_text_unlogged(admin) if superuser else []),
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), sql.Identifier(admin))]


#: The settings that would write a statement's text to the server's log, off for a role's sessions.
#: By default PostgreSQL logs a failed statement's text (log_min_error_statement = error), and a DBA may
#: log DDL or slow statements on top.
STATEMENT_LOGGING_OFF = (("log_min_error_statement", "panic"), ("log_statement", "none"),
                         ("log_min_duration_statement", "-1"))


def statement_text_unlogged(role: str) -> list[sql.Composed]:
    """Run as the superuser (these settings are superuser-only, so the role cannot undo them): the
    role's sessions never write a statement's text to the log. Vault runs its creation and rotation
    SQL (`CREATE ROLE … PASSWORD '…'`, `ALTER ROLE … PASSWORD '…'`) in the sessions of the admin it
    connects as; a failed one would be logged with its password, and Vault retries a failed static
    rotation with the same password, so the log would end up holding a live one."""
    return [sql.SQL("ALTER ROLE {} SET {} = {}").format(sql.Identifier(role), sql.Identifier(name), sql.Literal(value))
            for name, value in STATEMENT_LOGGING_OFF]


def set_password(role: str, password: str) -> sql.Composed:
    """ALTER ROLE ... PASSWORD, composed client-side; never log the result."""
    return sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))


#: The demo schema the clients use (in the spirit of the seeds' users table),
#: created by the admin so that the admin owns it.
DEMO_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS public.users ("
    " id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE)",
    "CREATE TABLE IF NOT EXISTS public.orders ("
    " id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " user_id integer NOT NULL REFERENCES public.users (id), item text NOT NULL,"
    " created_at timestamptz NOT NULL DEFAULT now())",
    "INSERT INTO public.users (name, email) VALUES"
    " ('Ada Lovelace', 'ada@example.com'), ('Alan Turing', 'alan@example.com'),"
    " ('Grace Hopper', 'grace@example.com') ON CONFLICT (email) DO NOTHING",
]


def create_service_user(user: str, group: str, password: str | sql.Composable) -> sql.Composed:
    """A pre-existing service user for a Vault static role: LOGIN, in the group; never log the result.
    password: the text, or SQL that stands for it (a psql variable, say)."""
    return sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {} CONNECTION LIMIT {} IN ROLE {}").format(
        sql.Identifier(user), password if isinstance(password, sql.Composable) else sql.Literal(password),
        sql.Literal(CONNECTION_LIMIT), sql.Identifier(group))


def bootstrap_sql(admin: str, database: str, specs: tuple[GrantSpec, ...], group_prefix: str,
                  service_users: tuple[tuple[str, str], ...] = ()) -> str:
    """Run once by the image's initdb hook as the superuser: the admin, database, demo schema, groups,
    and the service users (user, grant spec name) of Vault's static roles.

    The admin's password is a psql variable the hook passes from a Secret, so
    the ConfigMap holds no secret. A service user's first password is random
    (Vault's static role rotates it at once).
    """
    lines = [s.as_string(None) + ";" for s in bootstrap_admin_statements(admin, database)]
    lines.append(f"ALTER ROLE \"{admin}\" WITH PASSWORD :'admin_password';")
    lines.append(f"\\connect {database}")
    lines.append(f'SET ROLE "{admin}";')
    lines += [s + ";" for s in DEMO_SCHEMA]
    for spec in specs:
        group = group_role_name(group_prefix, spec)
        lines.append(create_group_role(group) + ";")
        lines += [s + ";" for s in grant_statements(spec, group, database)]
    groups = {spec.name: group_role_name(group_prefix, spec) for spec in specs}
    for user, spec_name in service_users:
        lines.append("SELECT gen_random_uuid()::text || gen_random_uuid()::text AS service_password \\gset")
        lines.append(as_text(create_service_user(user, groups[spec_name], sql.SQL(":'service_password'"))) + ";")
    lines.append("RESET ROLE;")
    return "\n".join(lines) + "\n"


# A team's access (components/vault/team_access.py): the team writes the creation SQL of its own dynamic
# roles, and Vault runs it as the team's connection user. That user may not create roles (PostgreSQL 15's
# CREATEROLE could alter any non-superuser role, the platform's admin among them): three SECURITY DEFINER
# functions, owned by the platform's admin, are the only way it makes, renews and drops login users, and
# only users named `v_<team>_...` in the team's group.

#: How far past now + the team's max_ttl a user's VALID UNTIL may be set: Vault's clock and the database's.
TEAM_VALID_UNTIL_SLACK_SECONDS = 300


#: A team's name: short and without separators, so that its prefixes (`v_<team>_` of its users, `team-<team>-`
#: of its roles in Vault) never start another team's names.
TEAM_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")


@dataclass(frozen=True)
class TeamDatabaseNames:
    """What a team's access is called in the database."""

    team: str

    def __post_init__(self):
        if not isinstance(self.team, str) or not TEAM_NAME.match(self.team):
            raise ValueError(f"team names are 1 to 12 of a-z and 0-9, starting with a letter, got {self.team!r}")

    @property
    def group(self) -> str:
        """The NOLOGIN role holding the team's grant; its users are members of it and of nothing else."""
        return f"{TEAM_PREFIX}_{self.team}"

    @property
    def user(self) -> str:
        """The team's Vault connection's user: LOGIN, CONNECT, EXECUTE on the functions; nothing more."""
        return f"{TEAM_PREFIX}_{self.team}_vault"

    @property
    def schema(self) -> str:
        """Where the functions are (owned by the platform's admin)."""
        return f"{TEAM_PREFIX}_{self.team}"

    @property
    def username_pattern(self) -> str:
        """The users the functions touch: what `username_template()` renders for the team's roles
        (`<team>` or `<team>-...`)."""
        return f"^{USERNAME_PREFIX}_{self.team}_[a-z0-9_]+$"

    def function(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)


def team_user_statements(names: TeamDatabaseNames, database: str) -> list[sql.Composed]:
    """Run as the superuser: the team's connection user, who may connect and nothing else (no CREATEROLE:
    it makes users through the functions only). Its password is set separately (`set_password`)."""
    user = sql.Identifier(names.user)
    return [
        sql.SQL("CREATE ROLE {} WITH LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS "
                "CONNECTION LIMIT {}").format(user, sql.Literal(CONNECTION_LIMIT)),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), user),
    ]


_IS_TEAM_USER = """
  IF user_name !~ {pattern} OR octet_length(user_name) > {max_bytes} THEN
    RAISE EXCEPTION 'role % is no user of team %', user_name, {team} USING ERRCODE = 'insufficient_privilege';
  END IF;"""
_IN_TEAM_GROUP = """
  IF NOT EXISTS (SELECT FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                 JOIN pg_roles u ON u.oid = m.member WHERE g.rolname = {group} AND u.rolname = user_name) THEN
    RAISE EXCEPTION 'role % is not in the group of team %', user_name, {team} USING ERRCODE = 'insufficient_privilege';
  END IF;"""
_WITHIN_CAP = """
  IF expires::timestamptz > now() + make_interval(secs => {cap}) THEN
    RAISE EXCEPTION 'valid until % is beyond team %''s cap of {cap_seconds}s', expires, {team}
      USING ERRCODE = 'insufficient_privilege';
  END IF;"""

_TEAM_FUNCTIONS = {
    "create_user": ("user_name text, user_password text, expires text", _IS_TEAM_USER + _WITHIN_CAP + """
  EXECUTE format('CREATE ROLE %I WITH LOGIN PASSWORD %L VALID UNTIL %L CONNECTION LIMIT {connection_limit} IN ROLE %I',
                 user_name, user_password, expires, {group});"""),
    "renew_user": ("user_name text, expires text", _IS_TEAM_USER + _IN_TEAM_GROUP + _WITHIN_CAP + """
  EXECUTE format('ALTER ROLE %I VALID UNTIL %L', user_name, expires);"""),
    # As `revocation_statements`: no-op for a user already gone, so Vault may retry.
    "drop_user": ("user_name text", _IS_TEAM_USER + """
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = user_name) THEN
    RETURN;
  END IF;""" + _IN_TEAM_GROUP + """
  PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = user_name;
  IF EXISTS (SELECT FROM pg_shdepend d JOIN pg_roles r ON d.refclassid = 'pg_authid'::regclass
             AND d.refobjid = r.oid WHERE r.rolname = user_name) THEN
    EXECUTE format('GRANT %I TO CURRENT_USER', user_name);
    EXECUTE format('REASSIGN OWNED BY %I TO CURRENT_USER', user_name);
    EXECUTE format('DROP OWNED BY %I', user_name);
  END IF;
  EXECUTE format('DROP ROLE %I', user_name);"""),
}


def team_function_statements(names: TeamDatabaseNames, max_ttl: int,
                             connection_limit: int = CONNECTION_LIMIT) -> list[str]:
    """Run as the platform's admin (`SET ROLE`), which then owns them: the team's schema and its three
    functions, callable by the team's connection user only. Re-running them replaces the functions.

    `SET search_path = pg_catalog, pg_temp` (pg_temp last): nothing the caller can create is found
    before the catalogs. Every identifier goes through format('%I'), every value through '%L'.
    """
    if isinstance(max_ttl, bool) or not isinstance(max_ttl, int) or max_ttl <= 0:
        raise ValueError(f"max_ttl must be a positive whole number of seconds, got {max_ttl!r}")
    schema, user = sql.Identifier(names.schema), sql.Identifier(names.user)
    values = {
        "pattern": sql.Literal(names.username_pattern), "max_bytes": sql.Literal(MAX_IDENTIFIER_BYTES),
        "team": sql.Literal(names.team), "group": sql.Literal(names.group),
        "cap": sql.Literal(max_ttl + TEAM_VALID_UNTIL_SLACK_SECONDS), "cap_seconds": sql.SQL(str(max_ttl)),
        "connection_limit": sql.SQL(str(int(connection_limit))),
    }
    statements = [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema),
        sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(schema),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, user),
    ]
    for function, (parameters, body) in _TEAM_FUNCTIONS.items():
        signature = sql.SQL("{}({})").format(names.function(function), sql.SQL(parameters))
        statements += [
            sql.SQL("CREATE OR REPLACE FUNCTION {} RETURNS void LANGUAGE plpgsql SECURITY DEFINER "
                    "SET search_path = pg_catalog, pg_temp AS $team$\nBEGIN{}\nEND\n$team$").format(
                signature, sql.SQL(body).format(**values)),
            sql.SQL("REVOKE ALL ON FUNCTION {} FROM PUBLIC").format(signature),
            sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(signature, user),
        ]
    return [as_text(s) for s in statements]


def team_drop_statements(names: TeamDatabaseNames, database: str) -> list[str]:
    """Run as the superuser: the functions and the team's connection user, gone (its sessions ended)."""
    user = sql.Identifier(names.user)
    return [as_text(s) for s in (
        sql.SQL("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = {}").format(
            sql.Literal(names.user)),
        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(names.schema)),
        sql.SQL("DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = {}) THEN EXECUTE {}; END IF; END $$").format(
            sql.Literal(names.user),
            sql.Literal(as_text(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(sql.Identifier(database), user)))),
        sql.SQL("DROP ROLE IF EXISTS {}").format(user),
    )]


def team_creation_statements(names: TeamDatabaseNames) -> list[str]:
    """Vault's creation SQL for a team's dynamic role: the team's function makes the user."""
    return [as_text(sql.SQL("SELECT {}('{{{{name}}}}', '{{{{password}}}}', '{{{{expiration}}}}')").format(
        names.function("create_user")))]


def team_renew_statements(names: TeamDatabaseNames) -> list[str]:
    """Vault's renew SQL for a team's dynamic role (the plugin's default ALTER ROLE would need CREATEROLE)."""
    return [as_text(sql.SQL("SELECT {}('{{{{name}}}}', '{{{{expiration}}}}')").format(names.function("renew_user")))]


def team_revocation_statements(names: TeamDatabaseNames) -> list[str]:
    """Vault's revocation SQL for a team's dynamic role."""
    return [as_text(sql.SQL("SELECT {}('{{{{name}}}}')").format(names.function("drop_user")))]
