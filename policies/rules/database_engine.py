"""The database secrets engine: its connections, dynamic and static roles, the root credentials'
rotation (stack-wide), and static passwords left in KV v2 beside dynamic roles (components/migration/)."""

import json
import re
from typing import Any, Iterable, Mapping

from pulumi_policy.proxy import UnknownValueError

from policies.rules.common import CONNECTION, ENDPOINT, KV_SECRET, ROLE, ROTATION, STATIC_ROLE, Report, known

#: Role attributes and grants a dynamic role must never carry.
PRIVILEGED = re.compile(
    r"\b(SUPERUSER|CREATEROLE|CREATEDB|BYPASSRLS|REPLICATION|ALL\s+PRIVILEGES|GRANT\s+ALL)\b", re.IGNORECASE
)
#: Predefined roles that read, write or administer everything.
PRIVILEGED_PREDEFINED = re.compile(
    r"\b(pg_read_all_data|pg_write_all_data|pg_read_server_files|pg_write_server_files|"
    r"pg_execute_server_program|pg_signal_backend|pg_checkpoint|pg_monitor|pg_database_owner)\b",
    re.IGNORECASE,
)
#: A privilege on an object granted to the dynamic user itself, not to a group it joins.
DIRECT_GRANT = re.compile(r"\bGRANT\s+.+?\s+ON\s+.+?\s+TO\s+\"?\{\{(?:name|username)\}\}", re.IGNORECASE | re.DOTALL)
JOINED_ROLES = re.compile(r"\bIN\s+ROLE\s+(.+?)(?:;|$)|\bGRANT\s+(.+?)\s+TO\b", re.IGNORECASE | re.DOTALL)
VALID_UNTIL = re.compile(r"VALID\s+UNTIL\s+'\{\{expiration\}\}'", re.IGNORECASE)
LITERAL_PASSWORD = re.compile(r"://[^/@{]*:(?!\{\{password\}\})[^/@]*@")


def _statements(props: Mapping[str, Any], key: str) -> list[str]:
    value = props.get(key) or []
    return [value] if isinstance(value, str) else [s for s in value if isinstance(s, str)]


def _connection_urls(props: Mapping[str, Any]) -> list[str]:
    """connectionUrl of every plugin block (postgresql, or any other) on a connection."""
    urls = []
    for value in props.values():
        blocks = value if isinstance(value, list) else [value]
        for block in blocks:
            if isinstance(block, Mapping) and isinstance(block.get("connectionUrl"), str):
                urls.append(block["connectionUrl"])
    return urls


# Database connections


#: A team's connection user (components/postgres_sql.py's TeamDatabaseNames): its roles are the team's own.
TEAM_CONNECTION_USER = re.compile(r"^dbcreds_team_(?P<team>[a-z][a-z0-9]{0,11})_vault$")


def connection_allowed_roles(props: Mapping[str, Any], _config: Mapping[str, Any], report: Report) -> None:
    """Exactly the roles a connection serves; a team's connection (its user a team's, which makes users
    only through the team's functions) serves the team's roles, `<team>` and `<team>-*`, which the team
    writes itself."""
    roles = props.get("allowedRoles")
    username = ((props.get("postgresql") or {}).get("username")) if isinstance(props.get("postgresql"), Mapping) else None
    team = TEAM_CONNECTION_USER.match(username) if isinstance(username, str) else None
    team_glob = f"{team.group('team')}-*" if team else None
    if not roles:
        report("allowedRoles is empty: list exactly the roles this connection serves")
    elif any("*" in r for r in roles if isinstance(r, str) and r != team_glob):
        report("allowedRoles holds a '*' wildcard: list exactly the roles this connection serves")


def connection_templated_credentials(props: Mapping[str, Any], _config: Mapping[str, Any], report: Report) -> None:
    urls = _connection_urls(props)
    if not urls:
        report("no connectionUrl: set one with {{username}}:{{password}} templating")
    for url in urls:
        if "{{username}}" not in url or "{{password}}" not in url:
            report("connectionUrl does not use {{username}}:{{password}} templating: without it Vault "
                   "cannot rotate the root credentials")
        elif LITERAL_PASSWORD.search(url):
            report("connectionUrl carries a literal password: use {{password}} and the password field")


def connection_verify_full(props: Mapping[str, Any], config: Mapping[str, Any], report: Report) -> None:
    for url in _connection_urls(props):
        query = url.partition("?")[2]
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        if params.get("sslmode") != "verify-full":
            report("connectionUrl does not set sslmode=verify-full: the server would not be verified")
        elif not params.get("sslrootcert") and not any(
            isinstance(b, Mapping) and b.get("tlsCa") for b in props.values()
        ):
            report("connectionUrl verifies TLS without a CA: set sslrootcert (or tlsCa)")


def connection_verified(props: Mapping[str, Any], _config: Mapping[str, Any], report: Report) -> None:
    """Vault tries a connection when it is written (verify_connection, on unless set off): a wrong host,
    CA, user or password then fails the `up` that writes it, not a client's first request hours later."""
    if known(props, "verifyConnection") is False:
        report("verifyConnection is false: a wrong host, CA or password would be found only when a client "
               "first asks for credentials; leave it on so the write that configures it fails instead")


URL_USER = re.compile(r"^[a-z][a-z0-9+.-]*://([^:/@]+)[:@]", re.IGNORECASE)


def _connection_admins(props: Mapping[str, Any]) -> set[str]:
    """The users a connection's plugin blocks log in as: their username field, and a URL's literal user."""
    admins = set()
    # Value by value: one not known at preview (a stack policy's resources carry their id) is passed over.
    for value in (known(props, key) for key in list(props.keys())):
        for block in value if isinstance(value, list) else [value]:
            if not isinstance(block, Mapping):
                continue
            if isinstance(username := known(block, "username"), str):
                admins.add(username)
            url = known(block, "connectionUrl")
            if isinstance(url, str) and (user := URL_USER.match(url)) and "{{" not in user.group(1):
                admins.add(user.group(1))
    return admins


def connection_not_superuser(props: Mapping[str, Any], config: Mapping[str, Any], report: Report) -> None:
    """Vault connects as an admin that can make and drop users and grant what a role's group holds,
    never as the database's superuser: with root rotated, Vault alone would hold the superuser's
    password, and any role's SQL would run with every right."""
    superusers = {name.lower() for name in config["superuserNames"]}
    for admin in sorted(_connection_admins(props)):
        if admin.strip('"').lower() in superusers:
            report(f"the connection logs in as {admin!r}, the database's superuser: connect as an admin role "
                   "with CREATEROLE that owns what it grants")


# Dynamic and static roles


def role_ttls(props: Mapping[str, Any], config: Mapping[str, Any], report: Report) -> None:
    cap = int(config["maxTtlCapSeconds"])
    default, maximum = props.get("defaultTtl"), props.get("maxTtl")
    if not default or not maximum:
        report("defaultTtl and maxTtl must both be set: unset means the mount's (often 32 days)")
        return
    if default > maximum:
        report(f"defaultTtl ({int(default)}s) is longer than maxTtl ({int(maximum)}s)")
    if maximum > cap:
        report(f"maxTtl ({int(maximum)}s) is over this environment's cap of {cap}s")


def role_valid_until(props: Mapping[str, Any], _config: Mapping[str, Any], report: Report) -> None:
    if not any(VALID_UNTIL.search(s) for s in _statements(props, "creationStatements")):
        report("creationStatements do not set VALID UNTIL '{{expiration}}': the user would outlive its lease")


def role_least_privilege(props: Mapping[str, Any], config: Mapping[str, Any], report: Report) -> None:
    admins = {a.lower() for a in config["adminRoles"]}
    for statement in _statements(props, "creationStatements"):
        found = PRIVILEGED.search(statement)
        if found:
            report(f"creationStatements grant {found.group(1).upper()}: grant table privileges through a group role")
        elif DIRECT_GRANT.search(statement):
            report("creationStatements grant privileges on an object to the user itself: grant them to a group "
                   "role it joins (a role holding privileges of its own cannot be dropped at revocation)")
        for match in JOINED_ROLES.finditer(statement):
            joined = match.group(1) or match.group(2)
            names = {n.strip().strip('"').lower() for n in joined.split(",")}
            if PRIVILEGED_PREDEFINED.search(joined):
                report("creationStatements join a predefined role that reads, writes or administers everything")
            if names & admins:
                report("creationStatements join the admin role: join a group role with only the needed privileges")


CONNECTION_LIMIT = re.compile(r"\bCONNECTION\s+LIMIT\s+\d+", re.IGNORECASE)


def role_connection_limit(props: Mapping[str, Any], _config: Mapping[str, Any], report: Report) -> None:
    if not any(CONNECTION_LIMIT.search(s) for s in _statements(props, "creationStatements")):
        report("creationStatements set no CONNECTION LIMIT: one user could take every session")


#: A statement that drops the user Vault made: `DROP ROLE|USER [IF EXISTS] "{{name}}"` (or {{username}}),
#: written out or through format('DROP ROLE IF EXISTS %I', '{{name}}') in a PL/pgSQL block.
DROPS_THE_USER = re.compile(
    r"""\bDROP\s+(?:ROLE|USER)\s+(?:IF\s+EXISTS\s+)?"""
    r"""(?:"?\{\{(?:name|username)\}\}"?|%I'\s*,\s*'\{\{(?:name|username)\}\}')""",
    re.IGNORECASE,
)


def role_revocation(props: Mapping[str, Any], _config: Mapping[str, Any], report: Report) -> None:
    """Revocation removes the user the creation SQL made. Revoking its privileges alone leaves a dead
    role behind for every lease: the database fills with them."""
    statements = _statements(props, "revocationStatements")
    if not statements:
        report("revocationStatements are empty: the database users would be left behind; drop them")
    elif not any(DROPS_THE_USER.search(s) for s in statements):
        report("revocationStatements never drop the user ({{name}}): each lease would leave a role behind; "
               'end with DROP ROLE IF EXISTS "{{name}}"')


def static_role_rotation(props: Mapping[str, Any], config: Mapping[str, Any], report: Report) -> None:
    cap = int(config["maxRotationPeriodSeconds"])
    period = props.get("rotationPeriod")
    if not period and not props.get("rotationSchedule"):
        report("neither rotationPeriod nor rotationSchedule is set: the password would never rotate")
    elif period and period > cap:
        report(f"rotationPeriod ({int(period)}s) is over this environment's cap of {cap}s")


def static_role_not_admin(resources: Iterable[Any], config: Mapping[str, Any], report: Report) -> None:
    """No static role takes over a user a connection logs in as (its admin), an admin role or the
    database's superuser: Vault would rotate the password the connection logs in with behind the
    connection's back (cutting itself off), and whoever may read the role's static-creds holds the admin."""
    resources = list(resources)
    admins = {a.strip('"').lower() for r in resources if r.resource_type == CONNECTION
              for a in _connection_admins(r.props)}
    named = {n.lower() for n in (*config["adminRoles"], *config["superuserNames"])}
    for r in resources:
        username = known(r.props, "username") if r.resource_type == STATIC_ROLE else None
        if isinstance(username, str) and username.strip('"').lower() in admins | named:
            what = "a connection logs in as" if username.strip('"').lower() in admins else "an admin or superuser"
            report(f"static role {r.name}: its user {username!r} is {what}: Vault would rotate that password behind "
                   "the connection's back, and whoever reads the role's static-creds holds it; give the static role "
                   "an application's own user")


# Root credentials (stack-wide)


def root_rotation(resources: Iterable[Any], config: Mapping[str, Any], report: Report) -> None:
    """Every connection has a rotate-root endpoint (or a root rotation period). A Rotation that names
    the endpoint (`rotates`) schedules it again: never above maxRootRotationSeconds, and required where
    requireRotationSchedule (production: OpenBao never rotates root by itself)."""
    resources = list(resources)
    rotated = {
        r.props.get("path") for r in resources
        if r.resource_type == ENDPOINT and isinstance(r.props.get("path"), str)
    }
    rotations = [(known(r.props, "rotates"), known(r.props, "rotate_after")) for r in resources
                 if r.resource_type == ROTATION]
    schedules = {rotates: period for rotates, period in rotations if isinstance(rotates, str)}
    # A Rotation whose target is not known at preview may be the one: judged at update.
    unknown = any(rotates is None for rotates, _period in rotations)
    cap = int(config["maxRootRotationSeconds"])
    for r in resources:
        if r.resource_type != CONNECTION:
            continue
        backend, name = r.props.get("backend"), r.props.get("name")
        if not isinstance(backend, str) or not isinstance(name, str):
            continue  # not known at preview: judged at update
        path = f"{backend}/rotate-root/{name}"
        if path not in rotated and not r.props.get("rotationPeriod"):
            report(f"connection {r.name}: root credentials are never rotated; add a generic.Endpoint at {path}")
            continue
        period = schedules.get(path)
        if period is None and config["requireRotationSchedule"] and not unknown:
            report(f"connection {r.name}: root credentials are rotated once, never on a schedule; replace the "
                   f"endpoint at {path} with a Rotation (components.vault.rotation) whose rotates names it "
                   f"(root_rotation_period)")
        elif isinstance(period, (int, float)) and period > cap:
            report(f"connection {r.name}: root credentials are rotated every {int(period)}s, over this "
                   f"environment's cap of {cap}s (root_rotation_period)")


# Static passwords in KV beside dynamic roles (components/migration/)


def _holds_password(props: Mapping[str, Any]) -> bool:
    text = props.get("dataJson")
    if not isinstance(text, str):
        return False  # unknown at preview, or write-only: judged by its metadata alone
    try:
        return isinstance(data := json.loads(text), dict) and "password" in data
    except ValueError:
        return False


def kv_passwords_beside_dynamic_roles(resources: Iterable[Any]) -> list[tuple[Any, str, str]]:
    """(secret, database, migration stage) for each KV v2 secret that holds a database password while a
    dynamic role on that database exists in the stack.

    A secret is a database password when its custom metadata names a `database`
    (for that database only) or when its data has a `password` (for every
    database). Its stage is its metadata's `migration_stage`, or "" when none.
    """
    resources = list(resources)
    databases = {r.props.get("dbName") for r in resources if r.resource_type == ROLE}
    found = []
    for r in resources:
        if r.resource_type != KV_SECRET:
            continue
        try:
            metadata = (r.props.get("customMetadata") or {}).get("data") or {}
            database, stage = metadata.get("database"), metadata.get("migration_stage") or ""
            if isinstance(database, str) and database in databases:
                found.append((r, database, stage))
            elif database is None and _holds_password(r.props) and databases - {None}:
                found.append((r, "any", stage))
        except UnknownValueError:
            continue  # not known at preview: judged at update
    return found


def kv_password_during_migration(resources: Iterable[Any], _config: Mapping[str, Any], report: Report) -> None:
    """At `dual`: the app reads both; finish the move."""
    for secret, database, stage in kv_passwords_beside_dynamic_roles(resources):
        if stage == "dual":
            report(f"KV secret {secret.name} holds a password for database {database!r}, which has dynamic "
                   f"roles: the migration is at 'dual'; move it to 'dynamic' to destroy the secret")


def kv_password_after_migration(resources: Iterable[Any], _config: Mapping[str, Any], report: Report) -> None:
    """Anywhere but `dual`: a static password beside dynamic roles is a leak waiting to happen."""
    for secret, database, stage in kv_passwords_beside_dynamic_roles(resources):
        if stage != "dual":
            at = f"the migration is at {stage!r}" if stage else "no migration is declared (migration_stage)"
            report(f"KV secret {secret.name} holds a password for database {database!r}, which has dynamic "
                   f"roles, and {at}: destroy every version of the secret (delete_all_versions), or declare "
                   f"the 'dual' stage while the app moves")
