"""What a stack on the external target needs of the credentials its operators gave, as plain data: the
Vault token's capabilities on each path the stack writes or reads, and the stack admin's role attributes
and ownership of what its grant specs grant on; and the one-line refusals when one falls short.

Pure: the providers that ask the servers (`components.dynamic.external_preflight`) pass their answers
in here. An operator can write the token's policy from `policy_hcl(required_capabilities(...))`.
"""

import json
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from components.grant_specs import GrantSpec

#: Make, read back, change and remove an object at a path.
CRUD = ("create", "read", "update", "delete")


def required_capabilities(
    database_mount: str, approle_mount: str, connection: str, roles: Sequence[str] = (),
    static_roles: Sequence[str] = (), clients: Mapping[str, str] | None = None,
    teams: Sequence["TeamPaths"] = (),
) -> dict[str, tuple[str, ...]]:
    """The capabilities the stack's token needs, by path: its own capabilities' and its lookup (this
    check's and the Vault provider's first calls), the audit devices' read (every `up`), the
    secrets engine's mount, its connection, root rotation, roles, static roles and their credentials
    (the post-deploy checks read them), the AppRole auth method and, for each client (its AppRole role
    name -> its policy's name), its policy, role, role_id and secret_ids; and what `make down` revokes
    and lists (the mount's leases). Each team adds the same for its own mount, policies and credential;
    its roles are the team's to name, so its leases are listed under any role (`+`)."""
    m, a = database_mount, approle_mount
    needed: dict[str, tuple[str, ...]] = {
        # What this check and the Vault provider ask first (the default policy grants both).
        "sys/capabilities-self": ("update",),
        "auth/token/lookup-self": ("read",),
        "sys/audit": ("read", "sudo"),
        **_mount(m, connection, roles),
        f"sys/auth/{a}": (*CRUD, "sudo"),
        # The provider reads and tunes an auth method through its mount.
        f"sys/mounts/auth/{a}": ("read",),
        f"sys/mounts/auth/{a}/tune": ("read", "update"),
        **{f"{m}/roles/{role}": CRUD for role in roles},
        **{f"{m}/static-roles/{user}": CRUD for user in static_roles},
        **{f"{m}/static-creds/{user}": ("read",) for user in static_roles},
    }
    for role, policy in (clients or {}).items():
        needed |= _approle_role(a, role, (policy,))
    for team in teams:
        needed |= _mount(team.mount, connection, ("+",))
        needed |= _approle_role(a, team.approle_role, team.policies)
    return needed


@dataclass(frozen=True)
class TeamPaths:
    """What the platform makes in Vault for a team: its mount, its AppRole role (its credential) and
    its policies (the team's and its clients')."""

    mount: str
    approle_role: str
    policies: tuple[str, ...]


def _mount(m: str, connection: str, roles: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """A database mount with its connection and root rotation, and what `make down` lists and revokes
    of its leases (by role)."""
    return {
        f"sys/mounts/{m}": CRUD,
        f"sys/mounts/{m}/tune": ("read", "update"),
        f"{m}/config/{connection}": CRUD,
        f"{m}/rotate-root/{connection}": ("update",),
        f"sys/leases/lookup/{m}/creds/": ("list", "sudo"),
        **{f"sys/leases/lookup/{m}/creds/{role}/": ("list", "sudo") for role in roles},
        # As `make down` sends it (hvac drops the slash; Vault adds it back before it revokes by prefix).
        f"sys/leases/revoke-prefix/{m}": ("update", "sudo"),
    }


def _approle_role(a: str, role: str, policies: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """An AppRole role with its policies, role_id and secret_ids (made, looked up, destroyed)."""
    needed = {f"sys/policies/acl/{policy}": CRUD for policy in policies}
    needed[f"auth/{a}/role/{role}"] = CRUD
    needed[f"auth/{a}/role/{role}/role-id"] = ("read",)
    for action in ("secret-id", "secret-id-accessor/lookup", "secret-id-accessor/destroy"):
        needed[f"auth/{a}/role/{role}/{action}"] = ("update",)
    return needed


def missing_capabilities(required: Mapping[str, Sequence[str]],
                         granted: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Each path whose required capabilities the token does not all have, and the ones it lacks
    (`granted`: what Vault's sys/capabilities-self says, by path; "root" has them all)."""
    missing = {}
    for path, needs in required.items():
        has = set(granted.get(path) or ())
        if "root" in has:
            continue
        lacks = [c for c in needs if c not in has]
        if lacks:
            missing[path] = lacks
    return missing


def token_refusal(address: str, missing: Mapping[str, Sequence[str]]) -> str:
    """The one-line refusal of a token that lacks `missing` (by path), or "" when it lacks nothing."""
    if not missing:
        return ""
    lacks = "; ".join(f"{path} ({', '.join(caps)})" for path, caps in missing.items())
    return (f"config vault_token: the token lacks capabilities this stack needs in the Vault at {address}, "
            f"by path: {lacks}; its operator grants them (this up made and changed nothing in that Vault)")


#: What the stack reads in the root namespace whatever its vault_namespace: OpenBao keeps audit devices
#: there only ("operation only available in root namespace" from a namespace), and the Vault provider
#: looks its token up where the token was made (the root namespace: a token made inside a namespace
#: cannot read the root's audit devices).
ROOT_NAMESPACE_PATHS = ("sys/audit", "auth/token/lookup-self")


def by_namespace(required: Mapping[str, Sequence[str]]) -> tuple[dict[str, tuple[str, ...]],
                                                                     dict[str, tuple[str, ...]]]:
    """(what of `required` a stack with a vault_namespace needs in it, what in the root namespace): the
    root-only ROOT_NAMESPACE_PATHS there, with the capabilities check's own path, which it reads them
    through; everything else in the namespace."""
    inside = {path: tuple(caps) for path, caps in required.items() if path not in ROOT_NAMESPACE_PATHS}
    in_root = {path: tuple(caps) for path, caps in required.items() if path in ROOT_NAMESPACE_PATHS}
    return inside, ({"sys/capabilities-self": ("update",), **in_root} if in_root else {})


def from_root_namespace(required: Mapping[str, Sequence[str]], namespace: str) -> dict[str, tuple[str, ...]]:
    """`required` (paths relative to the stack's namespace) as a policy of the root namespace writes
    them: `<namespace>/<path>`, but what is read in the root namespace (`by_namespace`) as it is. Without
    a namespace, `required` unchanged. What an operator grants a root-namespace token that works in the
    namespace (a token made inside a namespace cannot read the root's audit devices)."""
    if not namespace:
        return {path: tuple(caps) for path, caps in required.items()}
    inside, in_root = by_namespace(required)
    return {**in_root, **{f"{namespace}/{path}": caps for path, caps in inside.items()}}


def policy_hcl(required: Mapping[str, Sequence[str]]) -> str:
    """A Vault policy granting exactly `required` (what an operator gives the stack's token)."""
    return "".join(f'path {json.dumps(path)} {{\n  capabilities = {json.dumps(list(caps))}\n}}\n'
                   for path, caps in required.items())


@dataclass(frozen=True)
class DatabaseObject:
    """Something a grant spec grants on: its kind ("table", "sequence", "schema"), qualified name, and
    owner (None: it does not exist); owned: whether the stack admin has its owner's privileges."""

    kind: str
    name: str
    owner: str | None
    owned: bool


def granted_on(specs: Iterable[GrantSpec]) -> tuple[list[str], list[str], list[str], list[str]]:
    """(the schemas each of whose tables is granted on, the tables named, every schema granted USAGE
    on, the schemas whose sequences are granted on (the specs that insert)), as `grant_statements`
    grants them, each sorted once."""
    specs = list(specs)
    whole = sorted({s for spec in specs for s in spec.schemas})
    tables = sorted({t for spec in specs for t in spec.tables})
    schemas = sorted({s for spec in specs for s in (*spec.schemas, *(t.split(".")[0] for t in spec.tables))})
    sequences = sorted({s for spec in specs if "INSERT" in spec.privileges
                        for s in (*spec.schemas, *(t.split(".")[0] for t in spec.tables))})
    return whole, tables, schemas, sequences


def stack_admin_refusal(user: str, database: str, can_create_roles: bool, can_grant_signal: bool,
                        objects: Iterable[DatabaseObject], can_create_schemas: bool = True) -> str:
    """The one-line refusal of a stack admin that lacks CREATEROLE, may not grant pg_signal_backend (to
    Vault's admin), may not create the schemas the teams' functions live in (when there are teams),
    or does not own (nor has its owner's privileges on) something the grant specs grant on, naming
    each with its owner; "" when it lacks nothing."""
    problems = []
    if not can_create_roles:
        problems.append("it lacks CREATEROLE")
    if not can_grant_signal:
        problems.append("it may not grant pg_signal_backend (it needs it WITH ADMIN OPTION)")
    if not can_create_schemas:
        problems.append(f"it may not create schemas in database {database!r}, where each team's functions live "
                        f"(it needs CREATE on the database)")
    objects = list(objects)
    absent = [f"{o.kind} {o.name}" for o in objects if o.owner is None]
    if absent:
        problems.append(f"no such {', '.join(absent)}")
    foreign = [f"{o.kind} {o.name} (owner: {o.owner})" for o in objects if o.owner is not None and not o.owned]
    if foreign:
        problems.append(f"it does not own {', '.join(foreign)}")
    if not problems:
        return ""
    return (f"config db_stack_admin: the stack admin {user!r} cannot make this stack's roles and grants in "
            f"database {database!r}: {'; '.join(problems)}; its operator fixes that (this up made and "
            "changed nothing in the database)")
