"""The gate's rules as plain functions: `(props, config, report)` for one resource, or
`(resources, config, report)` for the stack. `report(message)` records a violation.

They judge pulumi-vault resources themselves (any team's program, not only
ours) by their engine property names (camelCase). Messages name the resource
field and the fix, never a property's value (props may hold unwrapped
secrets). `config` holds every key of the policy's schema (`policies/pack.py`,
where the defaults are).
"""

import json
import re
from typing import Any, Callable, Iterable, Mapping

import hcl2
from pulumi_policy.proxy import UnknownValueError

Report = Callable[[str], None]

CONNECTION = "vault:database/secretBackendConnection:SecretBackendConnection"
ROLE = "vault:database/secretBackendRole:SecretBackendRole"
STATIC_ROLE = "vault:database/secretBackendStaticRole:SecretBackendStaticRole"
POLICY = "vault:index/policy:Policy"
APPROLE_ROLE = "vault:appRole/authBackendRole:AuthBackendRole"
K8S_AUTH_ROLE = "vault:kubernetes/authBackendRole:AuthBackendRole"
ENDPOINT = "vault:generic/endpoint:Endpoint"
KV_SECRET = "vault:kv/secretV2:SecretV2"
#: Our OpenBao server (components/local/providers/openbao_server.py).
OPENBAO_SERVER = "pulumi-python:dynamic/dbcreds:OpenBaoServer"
#: Our rotation schedule (components/vault/rotation.py): `rotates` names what is replaced with it.
ROTATION = "pulumi-python:dynamic/dbcreds:Rotation"

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


def connection_allowed_roles(props: Mapping[str, Any], _config: Mapping[str, Any], report: Report) -> None:
    roles = props.get("allowedRoles")
    if not roles:
        report("allowedRoles is empty: list exactly the roles this connection serves")
    elif any("*" in r for r in roles if isinstance(r, str)):
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


URL_USER = re.compile(r"^[a-z][a-z0-9+.-]*://([^:/@]+)[:@]", re.IGNORECASE)


def _connection_admins(props: Mapping[str, Any]) -> set[str]:
    """The users a connection's plugin blocks log in as: their username field, and a URL's literal user."""
    admins = set()
    for value in props.values():
        for block in value if isinstance(value, list) else [value]:
            if not isinstance(block, Mapping):
                continue
            if isinstance(username := _known(block, "username"), str):
                admins.add(username)
            url = _known(block, "connectionUrl")
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
    rotations = [(_known(r.props, "rotates"), _known(r.props, "rotate_after")) for r in resources
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


# Static passwords in KV beside dynamic roles (components/migration.py)


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


# Client policies and AppRole


def _path_rules(text: str) -> list[tuple[str, Mapping[str, Any]]]:
    """A Vault policy document (HCL or JSON) as (path, its rules) pairs."""
    try:
        document = json.loads(text)
        paths = document.get("path", {})
        blocks = [paths] if isinstance(paths, Mapping) else paths
    except json.JSONDecodeError:
        blocks = hcl2.loads(text).get("path", [])
    return [(path.strip('"'), rules[0] if isinstance(rules, list) else rules)
            for block in blocks for path, rules in block.items()]


def parse_policy(text: str) -> dict[str, set[str]]:
    """A Vault policy document (HCL or JSON) as path -> capabilities."""
    parsed: dict[str, set[str]] = {}
    for path, rules in _path_rules(text):
        parsed.setdefault(path, set()).update(rules.get("capabilities", []))
    return parsed


def allowed_lease_ids(text: str, path: str) -> list[str] | None:
    """The lease ids a policy lets a token send to `path` in the body (`allowed_parameters.lease_id`);
    None when the path is granted with no such limit."""
    limits = [(rules.get("allowed_parameters") or {}) for p, rules in _path_rules(text) if p == path]
    if not limits or any("lease_id" not in limit for limit in limits):
        return None
    return [value for limit in limits for value in limit["lease_id"]]


ALLOWED_SYS = re.compile(r"^sys/leases/(renew|revoke)(/.*)?$")
#: The body-form lease paths: the lease id is a parameter, not part of the path.
BODY_LEASE_PATHS = ("sys/leases/renew", "sys/leases/revoke")
#: A lease id pattern under one creds path: <mount>/creds/<role>/*.
OWN_LEASES = re.compile(r"^[^*+]+/creds/[^*+/]+/\*$")
OWN_CREDS = re.compile(r"^[^*+]+/creds/[^*+/]+$")
#: The path-form lease endpoints: the lease id (or a glob over ids) is the rest of the path.
PATH_LEASES = re.compile(r"^sys/leases/(renew|revoke)/(.+)$")
LEASES_BY_PREFIX = re.compile(r"^sys/(leases/)?(revoke-prefix|revoke-force)(/|$)")
WRITE = {"create", "update", "delete", "patch"}


def client_policy_least_privilege(props: Mapping[str, Any], config: Mapping[str, Any], report: Report) -> None:
    text = props.get("policy")
    if not isinstance(text, str):
        return  # not known at preview
    try:
        paths = parse_policy(text)
    except Exception:  # noqa: BLE001 - any parse error is the finding
        report("policy is neither valid HCL nor JSON")
        return
    # The creds paths this policy reads: the only leases it may renew or revoke.
    own = {path for path in paths if OWN_CREDS.match(path)}
    for path, capabilities in paths.items():
        if "sudo" in capabilities:
            report(f"path {path!r} grants sudo")
        if path.startswith("sys/") and not ALLOWED_SYS.match(path):
            report(f"path {path!r} reaches sys/ beyond lease renew/revoke")
        if "/creds/" in path:
            mount, _, rest = path.partition("/creds/")
            role = rest.split("/")[0]
            if "*" in role or "+" in role or "+" in mount.split("/") or not role:
                report(f"path {path!r} globs over creds paths: it reaches other clients' credentials")
        if path in ("*", "+") or path.endswith("/*") and "/creds/" not in path and not ALLOWED_SYS.match(path):
            report(f"path {path!r} is a wildcard over a whole mount")
        if LEASES_BY_PREFIX.match(path):
            report(f"path {path!r} revokes leases by prefix: it could cut every client of a mount off at once")
        in_path = PATH_LEASES.match(path)
        if in_path and in_path.group(2).removesuffix("/*") not in own:
            report(f"path {path!r} reaches leases beyond the creds path this policy reads: grant "
                   "sys/leases/<renew|revoke>/<mount>/creds/<role>/* for its own role only")
        if path in BODY_LEASE_PATHS:
            lease_ids = allowed_lease_ids(text, path)
            if (lease_ids is None or not lease_ids or not all(OWN_LEASES.match(v) for v in lease_ids)
                    or not all(v.removesuffix("/*") in own for v in lease_ids)):
                report(f"path {path!r} takes any lease id in its body: limit allowed_parameters lease_id to the "
                       "client's own creds path (<mount>/creds/<role>/*)")


#: What changes a secrets engine (a database mount's connections, roles, static roles and root
#: credentials), as a path segment after the mount.
ENGINE_SEGMENTS = ("config", "roles", "static-roles", "rotate-root", "rotate-role", "reset", "reload")
#: Segments after which a path names data, not the engine (creds, KV v2's data and metadata).
DATA_SEGMENTS = {"creds", "static-creds", "data", "metadata"}


def _changes_engine(path: str) -> str | None:
    """The engine segment a write to `path` could reach (a glob counts), or None."""
    if path.startswith(("sys/", "auth/")):
        return None
    for segment in path.split("/")[1:]:
        if segment in DATA_SEGMENTS:
            return None
        if segment in ENGINE_SEGMENTS:
            return segment
        if segment == "+" or segment == "*":
            return "any"
        if segment.endswith("*") and (hit := next((e for e in ENGINE_SEGMENTS if e.startswith(segment[:-1])), None)):
            return hit
    return None


def client_policy_engine_untouched(props: Mapping[str, Any], _config: Mapping[str, Any], report: Report) -> None:
    """A client changes nothing of the engine it reads from: no write to a mount's connection config,
    roles, static roles, root or role rotation, reset or reload. `rotate-root` alone lets any client cut
    Vault off from the database (the new root password is known to Vault only, but the old one dies)."""
    text = props.get("policy")
    if not isinstance(text, str):
        return  # not known at preview
    try:
        paths = parse_policy(text)
    except Exception:  # noqa: BLE001 - reported by client-policy-least-privilege
        return
    for path, capabilities in paths.items():
        segment = _changes_engine(path)
        if segment and capabilities & WRITE:
            what = "any of its endpoints" if segment == "any" else f"its {segment} endpoint"
            report(f"path {path!r} may {'/'.join(sorted(capabilities & WRITE))} a secrets engine's "
                   f"{what}: a client only reads its creds")


def approle_bounded(props: Mapping[str, Any], config: Mapping[str, Any], report: Report) -> None:
    token_cap = int(config["maxTokenTtlSeconds"])
    secret_id_cap = int(config["maxSecretIdTtlSeconds"])
    token_max = props.get("tokenExplicitMaxTtl") or props.get("tokenMaxTtl")
    if not props.get("tokenTtl") or not token_max:
        report("tokenTtl and tokenMaxTtl (or tokenExplicitMaxTtl) must be set")
    elif token_max > token_cap:
        report(f"the token's max TTL ({int(token_max)}s) is over the cap of {token_cap}s")
    secret_id_ttl = props.get("secretIdTtl")
    if not secret_id_ttl:
        report("secretIdTtl is unset: the secret_id would never expire")
    elif secret_id_ttl > secret_id_cap:
        report(f"secretIdTtl ({int(secret_id_ttl)}s) is over the cap of {secret_id_cap}s")
    if "root" in (props.get("tokenPolicies") or []):
        report("tokenPolicies include root")
    if props.get("tokenNoDefaultPolicy") is not True:
        report("tokenNoDefaultPolicy is not true: the default policy lets a token renew any lease whose id it knows")


def approle_secret_id_required(props: Mapping[str, Any], _config: Mapping[str, Any], report: Report) -> None:
    """An AppRole login needs a secret_id: the role_id is an identifier handed around in config and
    logs, not a secret. (CIDR bounds narrow who may log in; they are no substitute for the secret.)"""
    if _known(props, "bindSecretId") is False:
        report("bindSecretId is false: the role_id alone, which is no secret, would log in; require a secret_id")


def kubernetes_auth_bounded(props: Mapping[str, Any], config: Mapping[str, Any], report: Report) -> None:
    """A Kubernetes auth role: named service accounts in named namespaces (no '*', no namespace label
    selector, which admits any namespace so labelled), an audience (a token meant for another service is
    refused), bounded token TTLs within the cap, never the root or the default policy."""
    for key, what in (("boundServiceAccountNames", "service accounts"),
                      ("boundServiceAccountNamespaces", "namespaces")):
        try:
            names = props.get(key)
        except UnknownValueError:
            continue  # not known at preview: judged at update
        if not names:
            report(f"{key} is empty: list the {what} whose pods log in")
        elif any(not isinstance(n, str) or "*" in n for n in names):
            report(f"{key} holds a '*' wildcard: list the {what} whose pods log in, each by name")
    if _known(props, "boundServiceAccountNamespaceSelector"):
        report("boundServiceAccountNamespaceSelector admits any namespace so labelled: list the namespaces instead")
    if not _known(props, "audience"):
        report("audience is unset: the role would take a service account token meant for any service")
    cap = int(config["maxTokenTtlSeconds"])
    token_max = props.get("tokenExplicitMaxTtl") or props.get("tokenMaxTtl")
    if not props.get("tokenTtl") or not token_max:
        report("tokenTtl and tokenMaxTtl (or tokenExplicitMaxTtl) must be set")
    elif token_max > cap:
        report(f"the token's max TTL ({int(token_max)}s) is over the cap of {cap}s")
    if props.get("tokenPeriod") and not props.get("tokenExplicitMaxTtl"):
        report("tokenPeriod without tokenExplicitMaxTtl: the token could be renewed forever")
    if "root" in (props.get("tokenPolicies") or []):
        report("tokenPolicies include root")
    if props.get("tokenNoDefaultPolicy") is not True:
        report("tokenNoDefaultPolicy is not true: the default policy lets a token renew any lease whose id it knows")


# Our own Vault server component


def vault_server_hardened(props: Mapping[str, Any], _config: Mapping[str, Any], report: Report) -> None:
    """Our OpenBao server resource (`OPENBAO_SERVER`): its listener has a certificate and key.

    At a first preview they are still being made (unknown): that is not a missing one."""
    for key in ("cert_pem", "key_pem"):
        try:
            value = props.get(key)
        except UnknownValueError:
            continue
        if not value:
            report(f"{key} is empty: the Vault server's listener would serve plaintext; give it a TLS "
                   "certificate and key")


# How many OpenBao nodes, and how they unseal (stack-wide)

CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
#: A seal stanza other than Shamir's in OpenBao's HCL config: an auto-unseal.
AUTO_UNSEAL = re.compile(r'^\s*seal\s+"(static|transit|awskms|gcpckms|azurekeyvault|ocikms|pkcs11|kmip)"', re.MULTILINE)


def _openbao(r: Any) -> bool:
    return (((r.props.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/name")) == "openbao"


def vault_highly_available(resources: Iterable[Any], config: Mapping[str, Any], report: Report) -> None:
    """Stack: OpenBao runs at least `minNodes` nodes (our local servers, or a StatefulSet's replicas),
    and with `requireAutoUnseal` every node unseals itself (a restarted node must not wait for a
    person with keys)."""
    minimum, auto = int(config["minNodes"]), bool(config["requireAutoUnseal"])
    resources = list(resources)
    servers = [r for r in resources if r.resource_type == OPENBAO_SERVER]
    if servers:
        if len(servers) < minimum:
            report(f"OpenBao runs {len(servers)} node(s): this environment needs at least {minimum} "
                   "(vault_nodes), so that it serves while one is lost")
        if auto and any(_known(r.props, "seal") != "static" for r in servers):
            report("OpenBao unseals with Shamir keys: this environment needs an auto-unseal (vault_seal: static)")
    statefulsets = [r for r in resources if r.resource_type == STATEFULSET and _openbao(r)]
    for statefulset in statefulsets:
        replicas = _known(statefulset.props.get("spec") or {}, "replicas")
        if isinstance(replicas, (int, float)) and replicas < minimum:
            report(f"StatefulSet {statefulset.name} runs {int(replicas)} OpenBao replica(s): this environment "
                   f"needs at least {minimum} (vault_nodes)")
    if statefulsets and auto:
        configs = [_known(r.props.get("data") or {}, "config.hcl") for r in resources
                   if r.resource_type == CONFIG_MAP and _openbao(r)]
        if None in configs:
            return  # not known at preview: judged at update
        if not any(isinstance(c, str) and AUTO_UNSEAL.search(c) for c in configs):
            report("OpenBao's config has no auto-unseal seal stanza: this environment needs one (vault_seal: static)")


#: Our OpenBao initialisation on the docker and kubernetes targets (components/servers/openbao_api.py).
OPENBAO_INIT = "pulumi-python:dynamic/dbcreds:OpenBaoInit"


def vault_no_root_token(resources: Iterable[Any], config: Mapping[str, Any], report: Report) -> None:
    """Stack: with `requireNoRootToken`, the stack keeps no root token: its OpenBao is initialised to
    hand over to an admin policy of the stack's own and revoke the root token (our local servers
    keep theirs)."""
    if not config["requireNoRootToken"]:
        return
    for r in resources:
        if r.resource_type == OPENBAO_SERVER:
            report(f"{r.name}: a local OpenBao server keeps its root token in the stack: this environment keeps "
                   "none (run it on the kubernetes target)")
        elif r.resource_type == OPENBAO_INIT and _known(r.props, "keep_root_token") is not False:
            report(f"{r.name}: keeps the root token: this environment hands over to the stack's admin policy and "
                   "revokes it (keep_root_token: false)")


def vault_spread(resources: Iterable[Any], config: Mapping[str, Any], report: Report) -> None:
    """Stack: with `requireSpread`, OpenBao's pods never share a node (required pod anti-affinity on the
    node's hostname) and a PodDisruptionBudget lets at most one of them down at a time."""
    if not config["requireSpread"]:
        return
    resources = list(resources)
    budgets = [r.props.get("spec") or {} for r in resources if r.resource_type == PDB]
    for statefulset in (r for r in resources if r.resource_type == STATEFULSET and _openbao(r)):
        affinity = (_pod_spec(statefulset.props).get("affinity") or {}).get("podAntiAffinity") or {}
        terms = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or []
        if not any(t.get("topologyKey") == "kubernetes.io/hostname" for t in terms):
            report(f"StatefulSet {statefulset.name}: no required pod anti-affinity on kubernetes.io/hostname: two "
                   "OpenBao pods could share a node and go down with it")
        labels = ((((statefulset.props.get("spec") or {}).get("template") or {}).get("metadata") or {})
                  .get("labels") or {})
        guarding = [b for b in budgets
                    if all(labels.get(k) == v for k, v in ((b.get("selector") or {}).get("matchLabels") or {}).items())
                    and (b.get("selector") or {}).get("matchLabels")]
        if not any(b.get("maxUnavailable") in (1, "1") for b in guarding):
            report(f"StatefulSet {statefulset.name}: no PodDisruptionBudget with maxUnavailable 1 selects its pods: a "
                   "drain could take several OpenBao nodes at once")


# The kubernetes target

STATEFULSET = "kubernetes:apps/v1:StatefulSet"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"


def _pod_spec(statefulset: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((statefulset.get("spec") or {}).get("template") or {}).get("spec") or {}


#: Where Kubernetes mounts a pod's API token.
API_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
#: Audiences the API server takes (its own, the default of a projected token with none).
API_AUDIENCE = re.compile(r"^(https://)?kubernetes\.default\.svc(\.|$|:)")


def _api_token_volumes(pod: Mapping[str, Any]) -> list[str]:
    """The pod's projected volumes whose service account token the API server accepts: with no audience
    (the API server's own) or the API server's. A token with an audience of its own (the OpenBao
    agent's, for Vault's Kubernetes auth) is no API token: the API server refuses it."""
    found = []
    for volume in pod.get("volumes") or []:
        for source in (volume.get("projected") or {}).get("sources") or []:
            token = source.get("serviceAccountToken")
            if token is not None and (not token.get("audience") or API_AUDIENCE.match(str(token["audience"]))):
                found.append(volume.get("name"))
    return found


def workload_hardened(props: Mapping[str, Any], _config: Mapping[str, Any], report: Report) -> None:
    """A StatefulSet's or Deployment's pods: non-root, no privilege escalation, read-only root, no
    capabilities, requests and limits, no host namespace, and no API token: never automounted, and
    projected only into OpenBao's pods (by their app label), at the standard path and read-only, where
    Kubernetes auth reviews the tokens pods log in with (TokenReview, bound to system:auth-delegator)."""
    pod = _pod_spec(props)
    pod_security = pod.get("securityContext") or {}
    if pod.get("automountServiceAccountToken") is not False:
        report("spec.template.spec.automountServiceAccountToken is not false: the pods need no API token")
    template_labels = (((props.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    openbao = template_labels.get("app.kubernetes.io/name") == "openbao"
    for volume in _api_token_volumes(pod):
        mounts = [m for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
                  for m in c.get("volumeMounts") or [] if m.get("name") == volume]
        if not openbao:
            report(f"volume {volume} projects an API token: only OpenBao's pods carry one (Kubernetes auth's "
                   "token reviews); give a token for Vault an audience of its own")
        elif any(m.get("mountPath", "").rstrip("/") != API_TOKEN_DIR or m.get("readOnly") is not True for m in mounts):
            report(f"volume {volume} (OpenBao's API token) is mounted elsewhere than {API_TOKEN_DIR}, or writable")
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            report(f"spec.template.spec.{key} is true: keep the pods in their own namespaces")
    # The engine hands props over as read-only proxies: unpack, never concatenate.
    for container in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        name = container.get("name", "?")
        security = container.get("securityContext") or {}
        if not (security.get("runAsNonRoot") or pod_security.get("runAsNonRoot")):
            report(f"container {name}: runAsNonRoot is not set")
        if security.get("allowPrivilegeEscalation") is not False:
            report(f"container {name}: allowPrivilegeEscalation is not false")
        if security.get("readOnlyRootFilesystem") is not True:
            report(f"container {name}: readOnlyRootFilesystem is not true")
        if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
            report(f"container {name}: capabilities do not drop ALL")
        limits = (container.get("resources") or {}).get("limits") or {}
        requests = (container.get("resources") or {}).get("requests") or {}
        if not {"cpu", "memory"} <= set(requests) or "memory" not in limits:
            report(f"container {name}: set cpu and memory requests and a memory limit")


def _selects(policy: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    selector = ((policy.get("spec") or {}).get("podSelector") or {}).get("matchLabels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def database_isolated(resources: Iterable[Any], _config: Mapping[str, Any], report: Report) -> None:
    """Stack: with a database StatefulSet, its namespace denies ingress by default and a policy opens
    the database's pods to named sources only."""
    resources = list(resources)
    databases = [r for r in resources if r.resource_type == STATEFULSET
                 and ((r.props.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/name")
                 == "postgres"]
    policies = [r.props for r in resources if r.resource_type == NETWORK_POLICY]
    for db in databases:
        labels = ((((db.props.get("spec") or {}).get("template") or {}).get("metadata") or {})
                  .get("labels") or {})
        if not any(((p.get("spec") or {}).get("podSelector") or {}) == {} and not (p.get("spec") or {}).get("ingress")
                   for p in policies):
            report("no default-deny ingress NetworkPolicy in the database's namespace")
        opening = [p for p in policies if _selects(p, labels) and (p.get("spec") or {}).get("ingress")]
        if not opening:
            report("no NetworkPolicy opens the database's pods to Vault and its clients only")
        for policy in opening:
            for rule in policy["spec"]["ingress"]:
                if not rule.get("from"):
                    report("a NetworkPolicy lets any pod reach the database: list the sources in `from`")


# The docker target

CONTAINER = "docker:index/container:Container"
IMAGE = "docker:index/image:Image"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
#: What a container may add back after dropping every capability (PostgreSQL's start hands its
#: files to the postgres user: chown, chmod, then setuid and setgid).
ALLOWED_CAPABILITIES = {"CHOWN", "FOWNER", "SETUID", "SETGID"}


def _known(props: Mapping[str, Any], key: str) -> Any:
    try:
        return props.get(key)
    except UnknownValueError:
        return None


def container_hardened(props: Mapping[str, Any], config: Mapping[str, Any], report: Report) -> None:
    """A container: not privileged, every capability dropped (a few added back at most), no privilege
    gain, no host namespace but the network, host paths only under the stack's data folder."""
    if _known(props, "privileged"):
        report("privileged is true: run it unprivileged")
    capabilities = _known(props, "capabilities") or {}
    if "ALL" not in (capabilities.get("drops") or []):
        report("capabilities.drops does not hold ALL: drop every capability")
    extra = {c.upper().removeprefix("CAP_") for c in capabilities.get("adds") or []} - ALLOWED_CAPABILITIES
    if extra:
        report(f"capabilities.adds holds {', '.join(sorted(extra))}: add back at most "
               f"{', '.join(sorted(ALLOWED_CAPABILITIES))}")
    if "no-new-privileges" not in (_known(props, "securityOpts") or []):
        report("securityOpts does not hold no-new-privileges")
    for key in ("pidMode", "ipcMode", "usernsMode"):
        if _known(props, key) == "host":
            report(f"{key} is host: keep the container in its own namespace")
    if _known(props, "devices"):
        report("devices are passed through: the servers need none")
    allowed = [p.rstrip("/") + "/" for p in config.get("allowedHostPaths") or []]
    mounts = [*(_known(props, "volumes") or []), *(_known(props, "mounts") or [])]
    for mount in mounts:
        host_path = mount.get("hostPath") or (mount.get("source") if mount.get("type") == "bind" else None)
        if isinstance(host_path, str) and not any((host_path.rstrip("/") + "/").startswith(p) for p in allowed):
            report(f"a volume mounts the host path {host_path}: only the stack's data folder may be mounted")


def images_built_here(resources: Iterable[Any], _config: Mapping[str, Any], report: Report) -> None:
    """Every container runs an image the stack builds itself (a docker Image, never pushed), and
    nothing is pulled (no RemoteImage)."""
    built = set()
    for r in resources:
        if r.resource_type == REMOTE_IMAGE:
            report(f"{r.name}: a RemoteImage pulls from a registry: build the image here (docker.Image)")
        elif r.resource_type == IMAGE:
            if _known(r.props, "skipPush") is not True:
                report(f"{r.name}: skipPush is not true: the stack's images stay in its own engine")
            built.update(v for v in (_known(r.props, "repoDigest"), _known(r.props, "imageName")) if v)
    for r in resources:
        if r.resource_type == CONTAINER:
            image = _known(r.props, "image")
            if image is not None and image not in built:
                report(f"{r.name}: image is not one the stack builds: run only images of its own docker.Image "
                       "resources")
