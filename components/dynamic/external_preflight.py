"""What the external target's stack checks of the credentials its operators gave, before it makes anything
with them: the stack admin's rights in the database (`StackAdminRights`) and the Vault token's
capabilities on the paths the stack uses (`VaultTokenRights`). Each is the first resource of its server's
component, the rest waiting for it, and fails the `up` with one line naming what is missing
(`components.external_rights`). Checked when made, when what it checks changes (the server, the
credential, the grant specs or the paths: an update), and otherwise at every preview and `up` in its diff,
which then shows no change.
"""

from typing import Any, Optional, Sequence

import hvac
import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from components.dynamic.failures import VAULT_ERRORS, ProviderError, failing_as
from components.external_rights import (DatabaseObject, granted_on, missing_capabilities, stack_admin_refusal,
                                        token_refusal)
from components.grant_specs import GrantSpec, grant_spec_of_props, grant_spec_props
from components.servers.database_access import server_props, stack_connection
from components.servers.process import pem_file

#: (may create roles, may grant pg_signal_backend) for the connected role. Before PostgreSQL 16,
#: CREATEROLE grants any role but a superuser's.
ROLE_RIGHTS = ("SELECT r.rolsuper OR r.rolcreaterole, r.rolsuper"
               " OR (current_setting('server_version_num')::int < 160000 AND r.rolcreaterole)"
               " OR pg_has_role(current_user, 'pg_signal_backend', 'MEMBER WITH ADMIN OPTION')"
               " FROM pg_roles r WHERE r.rolname = current_user")
#: May the connected role create schemas in the database (a team's functions live in one of its own)?
CREATES_SCHEMAS = "SELECT has_database_privilege(current_user, current_database(), 'CREATE')"
#: Owned: the connected role has its owner's privileges (is it, a member of it, or a superuser).
SCHEMAS = ("SELECT n.nspname, pg_get_userbyid(n.nspowner), pg_has_role(current_user, n.nspowner, 'USAGE')"
           " FROM pg_namespace n WHERE n.nspname = ANY(%s)")
#: The tables GRANT ... ON ALL TABLES IN SCHEMA reaches (any relation but an index, sequence or type), and
#: the sequences of the schemas given for them.
RELATIONS = ("SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END, n.nspname || '.' || c.relname,"
             " pg_get_userbyid(c.relowner), pg_has_role(current_user, c.relowner, 'USAGE')"
             " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
             " WHERE (c.relkind IN ('r', 'p', 'v', 'm', 'f')"
             " AND (n.nspname = ANY(%s) OR n.nspname || '.' || c.relname = ANY(%s)))"
             " OR (c.relkind = 'S' AND n.nspname = ANY(%s))")


def stack_admin_objects(conn, specs: Sequence[GrantSpec]) -> tuple[bool, bool, list[DatabaseObject]]:
    """(may create roles, may grant pg_signal_backend, what the specs grant on with its owner), read
    on conn as the stack admin."""
    whole, tables, schemas, sequences = granted_on(specs)
    can_create_roles, can_grant_signal = conn.execute(ROLE_RIGHTS).fetchone()
    found = {("schema", name): (owner, owned) for name, owner, owned in conn.execute(SCHEMAS, (schemas,))}
    found |= {(kind, name): (owner, owned)
              for kind, name, owner, owned in conn.execute(RELATIONS, (whole, tables, sequences))}
    objects = {("schema", s): DatabaseObject("schema", s, *found.get(("schema", s), (None, False)))
               for s in schemas}
    objects |= {("table", t): DatabaseObject("table", t, *found.get(("table", t), (None, False))) for t in tables}
    for (kind, name), (owner, owned) in sorted(found.items()):  # The whole schemas' tables and sequences.
        objects.setdefault((kind, name), DatabaseObject(kind, name, owner, owned))
    return bool(can_create_roles), bool(can_grant_signal), list(objects.values())


def _check_stack_admin(props: dict[str, Any]) -> None:
    specs = [grant_spec_of_props(spec) for spec in props["specs"]]
    user, database = props["stack_admin"]["user"], props["database"]
    with failing_as(f"reading the rights of the stack admin {user!r} in database {database!r}"), \
            stack_connection(props) as conn:
        can_create_schemas = not props.get("makes_schemas") or conn.execute(CREATES_SCHEMAS).fetchone()[0]
        refusal = stack_admin_refusal(user, database, *stack_admin_objects(conn, specs), bool(can_create_schemas))
    if refusal:
        raise ProviderError(refusal)


def _capabilities(address: str, ca_file: str, token: str, paths: list[str], namespace: str = "") -> dict:
    """What sys/capabilities-self says the token has on paths (in namespace: relative to it)."""
    where = f" in namespace {namespace}" if namespace else ""
    with failing_as(f"reading the token's capabilities (sys/capabilities-self){where} in the Vault at {address}",
                    VAULT_ERRORS):
        vault = hvac.Client(url=address, token=token, verify=ca_file, timeout=30, namespace=namespace or None)
        answer = vault.adapter.post("/v1/sys/capabilities-self", json={"paths": paths})
    return answer.get("data") or answer


def _check_token(props: dict[str, Any]) -> None:
    address, namespace = props["address"], props.get("namespace") or ""
    required = {path: caps for path, caps in props["required"]}
    root_required = {path: caps for path, caps in props.get("root_required") or ()}
    with pem_file(props["ca_pem"]) as ca_file:
        missing = missing_capabilities(required, _capabilities(address, ca_file, props["token"], list(required),
                                                               namespace))
        if root_required:
            # Read in the root namespace (no namespace header): named as its policy would name them.
            granted = _capabilities(address, ca_file, props["token"], list(root_required))
            missing = {**missing_capabilities(root_required, granted),
                       **{f"{namespace}/{path}": caps for path, caps in missing.items()}}
    refusal = token_refusal(address, missing)
    if refusal:
        raise ProviderError(refusal)


class _RightsProvider(ResourceProvider):
    """Checks at create; at an update, when any of its inputs changed; else in its diff, showing no change."""

    def _check(self, props: dict[str, Any]) -> None:
        raise NotImplementedError

    def create(self, props: dict[str, Any]) -> CreateResult:
        self._check(props)
        return CreateResult(id_="rights", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in set(olds) | set(news) if k != "__provider" and olds.get(k) != news.get(k)]
        if not changed:
            # Checked again at every preview and `up`, as a read: an operator may have taken a right
            # back since. No change to show when it still holds (make drift reports none).
            self._check(news)
        return DiffResult(changes=bool(changed))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._check(news)
        return UpdateResult(outs=news)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)


class _StackAdminRightsProvider(_RightsProvider):
    def _check(self, props: dict[str, Any]) -> None:
        _check_stack_admin(props)


class _TokenRightsProvider(_RightsProvider):
    def _check(self, props: dict[str, Any]) -> None:
        _check_token(props)


class StackAdminRights(Resource, module="dbcreds", name="StackAdminRights"):
    """That the stack admin may create roles and grant pg_signal_backend, owns every schema, table and
    sequence the grant specs grant on, and (makes_schemas: there are teams) may create schemas in the
    database (or the `up` fails, naming each it lacks)."""

    def __init__(self, name: str, database: pulumi.Input[str], stack_admin: pulumi.Input[dict],
                 specs: Sequence[GrantSpec], makes_schemas: bool = False,
                 opts: Optional[pulumi.ResourceOptions] = None):
        props = {**server_props(stack_admin=stack_admin), "database": database,
                 "specs": [grant_spec_props(spec) for spec in specs], "makes_schemas": makes_schemas}
        super().__init__(_StackAdminRightsProvider(), name, props, opts)


class VaultTokenRights(Resource, module="dbcreds", name="VaultTokenRights"):
    """That the token has every capability `required` lists ((path, capabilities) pairs; in `namespace`
    when one is given, relative to it) and `root_required` (in the root namespace), or the `up` fails
    naming each path (as a root-namespace policy names it) and what it lacks there."""

    def __init__(self, name: str, address: pulumi.Input[str], ca_pem: pulumi.Input[str], token: pulumi.Input[str],
                 required: Sequence[tuple[str, Sequence[str]]], namespace: str = "",
                 root_required: Sequence[tuple[str, Sequence[str]]] = (),
                 opts: Optional[pulumi.ResourceOptions] = None):
        props = {"address": address, "ca_pem": ca_pem, "token": pulumi.Output.secret(token),
                 "required": [[path, list(caps)] for path, caps in required]}
        if namespace:  # Without one, the inputs as they always were (no change to a stack made before).
            props |= {"namespace": namespace, "root_required": [[path, list(caps)] for path, caps in root_required]}
        super().__init__(_TokenRightsProvider(), name, props, opts)
