"""How clients reach their credentials: their Vault policies, their AppRole logins, and Kubernetes
auth roles for pods."""

import json
import re
from typing import Any, Mapping

import hcl2
from pulumi_policy.proxy import UnknownValueError

from policies.rules.common import Report, known


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


#: A team's policies, by name (the platform names them; `<vault_prefix>-` may come first): its client policy
#: (its apps read every creds path of the team's own mount) and its team policy (components/vault_policies.py).
TEAM_CLIENT_POLICY = re.compile(r"^(?:.+-)?client-team-(?P<team>[a-z][a-z0-9]{0,11})$")
TEAM_POLICY = re.compile(r"^(?:.+-)?team-(?P<team>[a-z][a-z0-9]{0,11})$")


def _team_mount(mount: str, team: str) -> bool:
    """Whether a mount path is team's own database mount (`[<prefix>-]team-<team>-db`)."""
    return re.fullmatch(rf"(?:[a-z0-9-]+-)?team-{team}-db", mount) is not None


def _policy_name(props: Mapping[str, Any]) -> str:
    name = known(props, "name")
    return name if isinstance(name, str) else ""


def is_team_policy(props: Mapping[str, Any]) -> bool:
    """A team's own policy (judged by team-policy-bounded, not as a client's)."""
    name = _policy_name(props)
    return bool(TEAM_POLICY.match(name)) and not TEAM_CLIENT_POLICY.match(name)


def client_policy_least_privilege(props: Mapping[str, Any], config: Mapping[str, Any], report: Report) -> None:
    text = props.get("policy")
    if not isinstance(text, str) or is_team_policy(props):
        return  # not known at preview; a team's policy has its own rule
    try:
        paths = parse_policy(text)
    except Exception:  # noqa: BLE001 - any parse error is the finding
        report("policy is neither valid HCL nor JSON")
        return
    # The creds paths this policy reads: the only leases it may renew or revoke.
    own = {path for path in paths if OWN_CREDS.match(path)}
    # A team's client policy reads every creds path of the team's own mount, which holds the team's roles only.
    team = TEAM_CLIENT_POLICY.match(_policy_name(props))
    team_creds = {path.removesuffix("/*") for path in paths if team and path.endswith("/creds/*")
                  and _team_mount(path.removesuffix("/creds/*"), team.group("team"))}
    own |= team_creds
    for path, capabilities in paths.items():
        if "sudo" in capabilities:
            report(f"path {path!r} grants sudo")
        if path.startswith("sys/") and not ALLOWED_SYS.match(path):
            report(f"path {path!r} reaches sys/ beyond lease renew/revoke")
        leases = PATH_LEASES.match(path)
        if "/creds/" in path and (leases.group(2) if leases else path).removesuffix("/*") not in team_creds:
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
            if (lease_ids is None or not lease_ids
                    or not all(OWN_LEASES.match(v) or v.removesuffix("/*") in team_creds for v in lease_ids)
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
    if not isinstance(text, str) or is_team_policy(props):
        return  # not known at preview; a team's policy writes its mount's roles (team-policy-bounded)
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


def _rules_at(text: str, path: str, key: str) -> dict:
    """A path's allowed_parameters or denied_parameters (merged over its blocks)."""
    merged: dict = {}
    for p, rules in _path_rules(text):
        blocks = rules.get(key) or {}
        for block in (blocks if isinstance(blocks, list) else [blocks]) if p == path else []:
            merged.update(block)
    return merged


def team_policy_bounded(props: Mapping[str, Any], _config: Mapping[str, Any], report: Report) -> None:
    """A team's policy reaches its own mount's roles and credentials, AppRole roles named
    `team-<team>-...` whose tokens carry its client policy only (token_policies pinned, the deprecated
    `policies` refused, no default policy), and its own token: nothing else, no sudo, no policy."""
    text = props.get("policy")
    match = TEAM_POLICY.match(_policy_name(props))
    if not isinstance(text, str) or not match or TEAM_CLIENT_POLICY.match(_policy_name(props)):
        return  # not known at preview, or no team's policy
    team = match.group("team")
    try:
        paths = parse_policy(text)
    except Exception:  # noqa: BLE001 - any parse error is the finding
        report("policy is neither valid HCL nor JSON")
        return
    client_policy = re.compile(rf"^(?:[a-z0-9-]+-)?client-team-{team}$")
    for path, capabilities in paths.items():
        if "sudo" in capabilities:
            report(f"path {path!r} grants sudo")
        if capabilities == {"deny"} or path in ("auth/token/lookup-self", "auth/token/renew-self"):
            continue
        mount, _, rest = path.partition("/")
        if _team_mount(mount, team) and rest in ("roles", "roles/*", "creds/*"):
            if rest == "creds/*" and capabilities - {"read"}:
                report(f"path {path!r} may {'/'.join(sorted(capabilities - {'read'}))} credentials: read only")
            continue
        in_path = PATH_LEASES.match(path)
        if in_path and _team_mount(in_path.group(2).split("/")[0], team) and in_path.group(2).endswith("/creds/*"):
            continue
        if path in BODY_LEASE_PATHS:
            lease_ids = allowed_lease_ids(text, path) or []
            if not lease_ids or not all(v.endswith("/creds/*") and _team_mount(v.split("/")[0], team)
                                        for v in lease_ids):
                report(f"path {path!r} takes lease ids beyond the team's mount's credentials")
            continue
        role = re.fullmatch(rf"auth/[^*+]+/role/team-{team}-\*", path)
        if role:
            allowed, denied = _rules_at(text, path, "allowed_parameters"), _rules_at(text, path, "denied_parameters")
            policies = allowed.get("token_policies")
            names = [n for v in (policies or []) for n in (v if isinstance(v, list) else [v])]
            if not names or not all(isinstance(n, str) and client_policy.match(n) for n in names):
                report(f"path {path!r} lets the team's AppRole roles carry other policies than its client policy: "
                       "pin allowed_parameters token_policies to client-team-<team>")
            if "policies" not in denied or denied["policies"]:
                report(f"path {path!r} leaves the deprecated 'policies' parameter open: deny it (an empty list)")
            if not allowed.get("token_no_default_policy") or not all(
                    v in (True, "true") for v in allowed["token_no_default_policy"]):
                report(f"path {path!r} lets the team's AppRole roles give the default policy: pin "
                       "token_no_default_policy to true")
            continue
        report(f"path {path!r} reaches beyond the team's mount's roles and credentials, its AppRole roles "
               f"(team-{team}-*) and its own token")


def _login_tokens_bounded(props: Mapping[str, Any], cap: int, report: Report) -> None:
    """What an auth role's login tokens must be, whatever the method: TTLs set and within the cap,
    never the root policy, nor the default one (it lets a token renew any lease whose id it knows)."""
    token_max = props.get("tokenExplicitMaxTtl") or props.get("tokenMaxTtl")
    if not props.get("tokenTtl") or not token_max:
        report("tokenTtl and tokenMaxTtl (or tokenExplicitMaxTtl) must be set")
    elif token_max > cap:
        report(f"the token's max TTL ({int(token_max)}s) is over the cap of {cap}s")
    if "root" in (props.get("tokenPolicies") or []):
        report("tokenPolicies include root")
    if props.get("tokenNoDefaultPolicy") is not True:
        report("tokenNoDefaultPolicy is not true: the default policy lets a token renew any lease whose id it knows")


def approle_bounded(props: Mapping[str, Any], config: Mapping[str, Any], report: Report) -> None:
    _login_tokens_bounded(props, int(config["maxTokenTtlSeconds"]), report)
    secret_id_cap = int(config["maxSecretIdTtlSeconds"])
    secret_id_ttl = props.get("secretIdTtl")
    if not secret_id_ttl:
        report("secretIdTtl is unset: the secret_id would never expire")
    elif secret_id_ttl > secret_id_cap:
        report(f"secretIdTtl ({int(secret_id_ttl)}s) is over the cap of {secret_id_cap}s")


def approle_secret_id_required(props: Mapping[str, Any], _config: Mapping[str, Any], report: Report) -> None:
    """An AppRole login needs a secret_id: the role_id is an identifier handed around in config and
    logs, not a secret. (CIDR bounds narrow who may log in; they are no substitute for the secret.)"""
    if known(props, "bindSecretId") is False:
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
    if known(props, "boundServiceAccountNamespaceSelector"):
        report("boundServiceAccountNamespaceSelector admits any namespace so labelled: list the namespaces instead")
    if not known(props, "audience"):
        report("audience is unset: the role would take a service account token meant for any service")
    _login_tokens_bounded(props, int(config["maxTokenTtlSeconds"]), report)
    if props.get("tokenPeriod") and not props.get("tokenExplicitMaxTtl"):
        report("tokenPeriod without tokenExplicitMaxTtl: the token could be renewed forever")
