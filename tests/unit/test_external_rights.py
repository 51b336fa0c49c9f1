"""What the external target's stack needs of its operators' credentials (components/external_rights.py,
stacks/external_target.py's vault_capabilities), and the one-line refusals when one falls short. The
servers' answers are checked for real by tests/integration/test_external_target.py."""

from pathlib import Path

import pytest

from components.external_rights import (CRUD, DatabaseObject, granted_on, missing_capabilities, policy_hcl,
                                        required_capabilities, stack_admin_refusal, token_refusal)
from components.grant_specs import GrantSpec
from stacks.config import validate
from stacks.external_target import vault_capabilities

EXTERNAL = {
    "target": "external", "vault_addr": "https://vault.internal:8200", "vault_ca_file": "vault-ca.crt",
    "vault_token": "t", "db_host": "db.internal", "db_port": "5432", "db_ca_file": "db-ca.crt",
    "db_stack_admin": "rds_master", "db_stack_admin_password": "p", "db_name": "app",
    "roles": {"reader": {"privileges": ["SELECT"], "schemas": ["public"]},
              "app": {"privileges": ["SELECT", "INSERT"], "tables": ["public.users", "sales.orders"]}},
    "service_users": {"svc_reporting": {"role": "reader", "rotation_period": "24h"}},
    "clients": {"app": {"role": "app", "allowed": ["SELECT 1 FROM public.users"],
                        "forbidden": ["DELETE FROM public.users"]}},
}


def test_the_token_needs_each_path_the_stack_uses_under_its_own_names():
    needed = vault_capabilities(validate(EXTERNAL, "ext", Path("/srv/project")))
    assert needed == {
        "sys/capabilities-self": ("update",), "auth/token/lookup-self": ("read",),
        "sys/audit": ("read", "sudo"),
        "sys/mounts/database": CRUD, "sys/mounts/database/tune": ("read", "update"),
        "sys/auth/approle": (*CRUD, "sudo"),
        "sys/mounts/auth/approle": ("read",), "sys/mounts/auth/approle/tune": ("read", "update"),
        "database/config/app": CRUD, "database/rotate-root/app": ("update",),
        "database/roles/reader": CRUD, "database/roles/app": CRUD,
        "database/static-roles/svc_reporting": CRUD, "database/static-creds/svc_reporting": ("read",),
        "sys/policies/acl/client-app": CRUD, "auth/approle/role/app": CRUD,
        "auth/approle/role/app/role-id": ("read",), "auth/approle/role/app/secret-id": ("update",),
        "auth/approle/role/app/secret-id-accessor/lookup": ("update",),
        "auth/approle/role/app/secret-id-accessor/destroy": ("update",),
        "sys/leases/lookup/database/creds/": ("list", "sudo"),
        "sys/leases/lookup/database/creds/reader/": ("list", "sudo"),
        "sys/leases/lookup/database/creds/app/": ("list", "sudo"),
        "sys/leases/revoke-prefix/database": ("update", "sudo"),
    }


def test_with_a_vault_prefix_every_path_but_the_systems_own_is_the_stacks_prefixed_one():
    needed = vault_capabilities(validate({**EXTERNAL, "vault_prefix": "team-a"}, "ext", Path("/srv/project")))
    names = ("team-a-database", "team-a-approle", "team-a-client-app")
    own = ("sys/capabilities-self", "auth/token/lookup-self", "sys/audit")
    unprefixed = [p for p in needed if p not in own and not any(n in p.split("/") for n in names)]
    assert unprefixed == []
    assert needed["sys/policies/acl/team-a-client-app"] == CRUD and "sys/mounts/database" not in needed


def test_what_the_token_lacks_by_path_root_lacking_nothing():
    required = required_capabilities("database", "approle", "app", roles=["app"])
    assert missing_capabilities(required, {path: ["root"] for path in required}) == {}
    granted = {path: list(caps) for path, caps in required.items()}
    assert missing_capabilities(required, granted) == {}
    granted["sys/audit"] = ["read"]
    granted["sys/mounts/database"] = ["deny"]
    del granted["database/roles/app"]
    assert missing_capabilities(required, granted) == {
        "sys/audit": ["sudo"], "sys/mounts/database": list(CRUD), "database/roles/app": list(CRUD)}


def test_a_token_is_refused_in_one_line_naming_each_path_and_what_it_lacks_there():
    assert token_refusal("https://vault.internal:8200", {}) == ""
    assert token_refusal("https://vault.internal:8200", {"sys/audit": ["sudo"], "sys/auth/approle": ["create"]}) == (
        "config vault_token: the token lacks capabilities this stack needs in the Vault at "
        "https://vault.internal:8200, by path: sys/audit (sudo); sys/auth/approle (create); its operator grants them "
        "(this up made and changed nothing in that Vault)")


def test_the_policy_an_operator_gives_grants_exactly_what_is_required():
    assert policy_hcl({"sys/audit": ("read", "sudo"), "database/roles/app": CRUD}) == (
        'path "sys/audit" {\n  capabilities = ["read", "sudo"]\n}\n'
        'path "database/roles/app" {\n  capabilities = ["create", "read", "update", "delete"]\n}\n')


def test_what_the_grant_specs_grant_on():
    specs = [GrantSpec("reader", ("SELECT",), schemas=("public",)),
             GrantSpec("app", ("SELECT", "INSERT"), tables=("public.users", "sales.orders"))]
    # Whole schemas, named tables, every schema granted USAGE on, the schemas whose sequences are granted.
    assert granted_on(specs) == (["public"], ["public.users", "sales.orders"], ["public", "sales"],
                                 ["public", "sales"])
    assert granted_on(specs[:1]) == (["public"], [], ["public"], [])


def test_a_stack_admin_is_refused_in_one_line_naming_each_thing_it_lacks():
    owned = [DatabaseObject("schema", "public", "pg_database_owner", True),
             DatabaseObject("table", "public.users", "rds_master", True)]
    assert stack_admin_refusal("rds_master", "app", True, True, owned) == ""
    objects = [*owned, DatabaseObject("table", "public.orders", "billing", False),
               DatabaseObject("table", "sales.orders", None, False),
               DatabaseObject("sequence", "public.orders_id_seq", "billing", False)]
    assert stack_admin_refusal("rds_master", "app", False, False, objects) == (
        "config db_stack_admin: the stack admin 'rds_master' cannot make this stack's roles and grants in database "
        "'app': it lacks CREATEROLE; it may not grant pg_signal_backend (it needs it WITH ADMIN OPTION); no such "
        "table sales.orders; it does not own table public.orders (owner: billing), sequence public.orders_id_seq "
        "(owner: billing); its operator fixes that (this up made and changed nothing in the database)")
    assert stack_admin_refusal("rds_master", "app", True, True, objects[:3]) == (
        "config db_stack_admin: the stack admin 'rds_master' cannot make this stack's roles and grants in database "
        "'app': it does not own table public.orders (owner: billing); its operator fixes that (this up made and "
        "changed nothing in the database)")


def test_a_stack_admin_that_may_not_create_the_teams_schemas_is_refused_naming_it():
    assert stack_admin_refusal("rds_master", "app", True, True, [], can_create_schemas=False) == (
        "config db_stack_admin: the stack admin 'rds_master' cannot make this stack's roles and grants in database "
        "'app': it may not create schemas in database 'app', where each team's functions live (it needs CREATE on "
        "the database); its operator fixes that (this up made and changed nothing in the database)")


def test_each_team_adds_its_mount_its_credentials_approle_role_and_its_two_policies():
    without = vault_capabilities(validate({**EXTERNAL, "vault_prefix": "plat"}, "ext", Path("/srv/project")))
    with_team = vault_capabilities(validate(
        {**EXTERNAL, "vault_prefix": "plat", "teams": {"reports": {"grant": {"privileges": ["SELECT"],
                                                                             "tables": ["public.users"]},
                                                                   "max_ttl": "1h"}}},
        "ext", Path("/srv/project")))
    added = {path: caps for path, caps in with_team.items() if path not in without}
    assert added == {
        "sys/mounts/plat-team-reports-db": CRUD, "sys/mounts/plat-team-reports-db/tune": ("read", "update"),
        "plat-team-reports-db/config/app": CRUD, "plat-team-reports-db/rotate-root/app": ("update",),
        "sys/leases/lookup/plat-team-reports-db/creds/": ("list", "sudo"),
        # The team names its roles: make down lists the leases under any of them.
        "sys/leases/lookup/plat-team-reports-db/creds/+/": ("list", "sudo"),
        "sys/leases/revoke-prefix/plat-team-reports-db": ("update", "sudo"),
        "sys/policies/acl/plat-team-reports": CRUD, "sys/policies/acl/plat-client-team-reports": CRUD,
        "auth/plat-approle/role/team-reports": CRUD, "auth/plat-approle/role/team-reports/role-id": ("read",),
        "auth/plat-approle/role/team-reports/secret-id": ("update",),
        "auth/plat-approle/role/team-reports/secret-id-accessor/lookup": ("update",),
        "auth/plat-approle/role/team-reports/secret-id-accessor/destroy": ("update",),
    }
    assert {path: caps for path, caps in with_team.items() if path in without} == without


def test_the_rights_are_checked_at_every_diff_that_shows_no_change_and_at_every_update():
    from components.dynamic.external_preflight import _RightsProvider
    from components.dynamic.failures import ProviderError

    class Rights(_RightsProvider):
        refusal = ""
        checked: list = []

        def _check(self, props):
            self.checked.append(props)
            if self.refusal:
                raise ProviderError(self.refusal)

    rights, props = Rights(), {"address": "https://vault.internal:8200", "required": [["sys/audit", ["read"]]]}
    assert rights.diff("rights", {**props, "__provider": "old"}, {**props, "__provider": "new"}).changes is False
    assert rights.checked == [{**props, "__provider": "new"}]
    rights.checked.clear()
    assert rights.diff("rights", props, props).changes is False and rights.checked == [props]
    # Inputs changed: the update checks.
    changed = {**props, "required": [["sys/audit", ["read", "sudo"]]]}
    assert rights.diff("rights", props, changed).changes is True and rights.checked == [props]
    assert rights.update("rights", props, changed).outs == changed and rights.checked == [props, changed]
    # A right taken back since: the diff itself refuses, and so does a create.
    rights.refusal = "config vault_token: the token lacks ..."
    with pytest.raises(ProviderError, match="^config vault_token: the token lacks"):
        rights.diff("rights", props, props)
    with pytest.raises(ProviderError, match="^config vault_token: the token lacks"):
        rights.create(props)
