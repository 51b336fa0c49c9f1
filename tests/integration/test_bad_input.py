"""Bad input against a running dev stack: each case fails `pulumi preview` and `pulumi up` with an
error that names what to fix, and leaves every resource and the state as they were.

One stack is brought up once; each case changes its config (or environment),
runs preview and up, compares the state with the one before, and puts the
config back. The pure validation behind most cases has its own unit tests
(tests/unit/test_config.py, test_grants.py); this proves the engine stops there.
"""

import base64
import json
import socket
import uuid
from contextlib import contextmanager

import pytest
from pulumi import automation as auto

from tests.automation import (assert_only_the_checks_change, local_servers_config, resources, root_program,
                              temporary_stack)
from tests.support.ports import free_port
from toolchain.env import ROOT
from tests.support.processes import remove_data_dir

ROLES = {
    "reader": {"privileges": ["SELECT"], "schemas": ["public"], "default_ttl": "1h", "max_ttl": "2h"},
    "app": {"privileges": ["SELECT", "INSERT"], "tables": ["public.users", "public.orders"], "max_ttl": "2h"},
}


def quiet(_line: str) -> None:
    """Keeps engine output out of the test log."""


def role(**fields):
    """The app role with some fields changed (None removes a field)."""
    spec = {**ROLES["app"], **fields}
    return {k: v for k, v in spec.items() if v is not None}


def roles(**specs):
    return ("dbcreds:roles", json.dumps({"reader": ROLES["reader"], **specs}))


def client_named(name, **fields):
    """A clients config of one client of the reader role, with extra fields."""
    return ("dbcreds:clients", json.dumps({name: {"role": "reader", "allowed": ["SELECT 1"],
                                                  "forbidden": ["CREATE ROLE x"], **fields}}))


# (case, config key, value, what the error must contain)
CASES = [
    ("ttl that does not parse", *roles(app=role(default_ttl="1 hour")), "config roles.app.default_ttl: "),
    ("max_ttl that does not parse", *roles(app=role(max_ttl="forever")), "config roles.app.max_ttl: "),
    ("negative ttl", *roles(app=role(max_ttl="-5m")), "config roles.app.max_ttl: "),
    ("cap that does not parse", "dbcreds:max_ttl_cap", "24 hours", "config max_ttl_cap: "),
    ("default_ttl > max_ttl", *roles(app=role(default_ttl="3h", max_ttl="2h")), "config roles.app.default_ttl: "),
    ("max_ttl over the cap", *roles(app=role(max_ttl="90d")), "config roles.app.max_ttl: "),
    ("unknown privilege", *roles(app=role(privileges=["SELEKT"])), "config roles.app.privileges: 'SELEKT' is not"),
    ("another dialect's privilege", *roles(app=role(privileges=["ZONECONFIG"])),
     "config roles.app.privileges: 'ZONECONFIG' is not a PostgreSQL"),
    ("privilege wider than allowed", *roles(app=role(privileges=["TRUNCATE"])),
     "config roles.app.privileges: 'TRUNCATE' is wider"),
    ("role-level privilege", *roles(app=role(privileges=["SUPERUSER"])), "config roles.app.privileges: "),
    ("no privileges", *roles(app=role(privileges=[])), "config roles.app.privileges: "),
    ("quote in a role name", *roles(**{'ap"p': role()}), 'config roles.ap"p: '),
    ("semicolon in a role name", *roles(**{"app;drop": role()}), "config roles.app;drop: "),
    ("unicode in a role name", *roles(**{"äpp": role()}), "config roles.äpp: "),
    ("empty role name", *roles(**{"": role()}), "config roles.: "),
    ("role name that would overflow usernames", *roles(**{"a" * 40: role()}), f"config roles.{'a' * 40}: "),
    # 16 characters render 50 bytes (test_dev_stack renders one through OpenBao); one more is refused.
    ("role name one over the 16 a username holds", *roles(**{"a" * 17: role()}),
     f"config roles.{'a' * 17}: role names are 1 to 16"),
    ("quote and semicolon in a table", *roles(app=role(tables=['public.users"; DROP TABLE x; --'])),
     "config roles.app.tables: "),
    ("unicode in a schema", *roles(app=role(tables=None, schemas=["pübl"])), "config roles.app.schemas: "),
    ("duplicate table", *roles(app=role(tables=["public.users", "public.users"])), "config roles.app.tables: "),
    ("unknown grant spec field", *roles(app=role(ttl="1h")), "config roles.app.ttl: "),
    ("a spec that grants nothing", *roles(app=role(tables=None)), "config roles.app: "),
    ("no roles", "dbcreds:roles", "{}", "config roles: "),
    ("unknown engine", "dbcreds:db_engine", "mysql", "config db_engine: "),
    ("quote in the database name", "dbcreds:db_name", 'app"; DROP', "config db_name: "),
    ("port out of range", "dbcreds:db_port", "80", "config db_port: "),
    ("port shared with Vault", "dbcreds:vault_cluster_port", "{vault_port}", "config vault_cluster_port: "),
    ("threshold above shares", "dbcreds:vault_key_threshold", "2", "config vault_key_threshold: "),
    ("certificate outliving its CA", "dbcreds:cert_validity_hours", "9000", "config cert_validity_hours: "),
    ("renewal window longer than the certificate", "dbcreds:cert_renew_before", "2161h",
     "config cert_renew_before: 2161h is longer than the certificate's lifetime (cert_validity_hours: 2160h)"),
    ("service user of no role", "dbcreds:service_users", json.dumps({"svc": {"role": "nope"}}),
     "config service_users.svc.role: "),
    ("transit store key on PostgreSQL", "dbcreds:transit_store_key", "true",
     "config transit_store_key: only CockroachDB encrypts its store"),
    ("client name a glob", "dbcreds:clients",
     json.dumps({"*": {"role": "reader", "allowed": ["SELECT 1"], "forbidden": ["CREATE ROLE x"]}}),
     "config clients.*: client names are"),
    ("empty client name", *client_named(""), "config clients.: client names are"),
    ("client name ..", *client_named(".."), "config clients...: client names are"),
    ("client name a path", *client_named("../app"), "config clients.../app: client names are"),
    ("over-long client name", *client_named("c" * 32), f"config clients.{'c' * 32}: client names are 1 to 31"),
    # A client's creds path is its role's, never config: naming one (another client's) is refused.
    ("client naming a creds path", *client_named("a", creds_path="database/creds/app"),
     "config clients.a.creds_path: is not a client field"),
    ("client of an unknown role", "dbcreds:clients",
     json.dumps({"ops": {"role": "admin", "allowed": ["SELECT 1"], "forbidden": ["CREATE ROLE x"]}}),
     "config clients.ops.role: must name one of the roles"),
    ("two clients on one role", "dbcreds:clients",
     json.dumps({c: {"role": "reader", "allowed": ["SELECT 1"], "forbidden": ["CREATE ROLE x"]} for c in "ab"}),
     "config clients.b.role: role 'reader' is already read by client 'a'"),
    # Pods log in with their service account only on the kubernetes target.
    ("Kubernetes login on the local target",
     *client_named("a", service_accounts=["a"], namespaces=["team"], token_max_ttl="24h"),
     "config clients.a.service_accounts: means nothing on the local target"),
    ("client token longer than the cap", "dbcreds:clients",
     json.dumps({"a": {"role": "reader", "allowed": ["SELECT 1"], "forbidden": ["x"], "token_max_ttl": "48h"}}),
     "config clients.a.token_max_ttl: "),
    ("service user rotation too long", "dbcreds:service_users",
     json.dumps({"svc": {"role": "reader", "rotation_period": "90d"}}), "config service_users.svc.rotation_period: "),
    ("an even number of OpenBao nodes", "dbcreds:vault_nodes", "4", "config vault_nodes: must be 1 or an odd number"),
    ("two OpenBao nodes", "dbcreds:vault_nodes", "2", "config vault_nodes: must be 1 or an odd number"),
    ("a cluster of nodes unsealed by hand", "dbcreds:vault_seal", "transit", "config vault_seal: must be auto or one"),
    # A setting of the other target is refused, never ignored.
    ("a kubernetes setting on the local target", "dbcreds:k8s_namespace", "dbcreds-dev",
     "config k8s_namespace: means nothing on the local target (it is for kubernetes)"),
    # The database's own schemas and roles: the up would fail granting or creating them.
    ("a system catalog's table", *roles(app=role(tables=["public.users", "pg_catalog.pg_authid"])),
     "config roles.app.tables: 'pg_catalog.pg_authid' is in pg_catalog, one of the database's system schemas"),
    ("a whole system schema", *roles(app=role(tables=None, schemas=["information_schema"])),
     "config roles.app.schemas: 'information_schema' is one of the database's system schemas"),
    ("a service user named postgres", "dbcreds:service_users", json.dumps({"postgres": {"role": "reader"}}),
     "config service_users.postgres: 'postgres' is one of the database's own roles"),
    ("a service user named as the admin", "dbcreds:service_users", json.dumps({"dbcreds_admin": {"role": "reader"}}),
     "config service_users.dbcreds_admin: 'dbcreds_admin' is already taken by db_admin"),
    ("an admin named postgres", "dbcreds:db_admin", "postgres", "config db_admin: 'postgres' is one of the database's "
                                                                "own roles"),
]


#: Each module stack's resources as its first `up` left them, and its config, by stack name: every
#: refused case must leave the resources so, and puts the config back so (each read once, rather than
#: once more before each case).
DECLARED: dict[str, dict] = {}
CONFIG: dict[str, dict[str, auto.ConfigValue]] = {}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("bad-input")
    data_dir = ROOT / ".data" / "tests" / f"bad-{uuid.uuid4().hex[:8]}"
    try:
        with temporary_stack(root_program(tmp_path), tmp_path, "bad-input") as stack:
            stack.set_config("dbcreds:roles", auto.ConfigValue(json.dumps(ROLES)), path=False)
            stack.set_all_config(local_servers_config(data_dir))
            stack.up(on_output=quiet)
            DECLARED[stack.name], CONFIG[stack.name] = resources(stack), stack.get_all_config()
            yield stack
    finally:
        # A failing up (or test) still leaves no data folder behind.
        remove_data_dir(data_dir)


@contextmanager
def changed_config(stack, key, value):
    """key set to value, then put back as the module's stack was configured (or removed)."""
    old = CONFIG[stack.name].get(key)
    stack.set_config(key, auto.ConfigValue(value), path=False)
    try:
        yield
    finally:
        if old is None:
            stack.remove_config(key)
        else:
            stack.set_config(key, old, path=False)


def assert_refused(stack, message: str) -> str:
    """Preview and up fail naming message, with no traceback, and change nothing (the state is the one
    the stack's first `up` left); the preview's output."""
    before = DECLARED[stack.name]
    with pytest.raises(auto.CommandError) as preview:
        stack.preview(on_output=quiet)
    assert message in str(preview.value)
    with pytest.raises(auto.CommandError) as up:
        stack.up(on_output=quiet)
    assert message in str(up.value)
    assert resources(stack) == before
    # Refused in one line: no traceback of the program around it.
    for output in (str(preview.value), str(up.value)):
        assert "Traceback" not in output, output
    return str(preview.value)


@pytest.mark.parametrize("case, key, value, message", CASES, ids=[c[0] for c in CASES])
def test_bad_config_is_refused_at_preview_naming_the_field(stack, case, key, value, message):
    value = value.replace("{vault_port}", stack.get_config("dbcreds:vault_port").value)
    with changed_config(stack, key, value):
        output = assert_refused(stack, message)
    # One `error:` line, the field first (a pulumi.RunError: the language host prints no traceback).
    assert f"\n    error: {message}" in output, output


def test_openbao_nodes_whose_ports_collide_are_refused_naming_the_setting(stack):
    """Three nodes take vault_port to vault_port + 2: a cluster port at vault_port + 1 is node 1's API port."""
    vault_port = int(stack.get_config("dbcreds:vault_port").value)
    with changed_config(stack, "dbcreds:vault_nodes", "3"), \
            changed_config(stack, "dbcreds:vault_cluster_port", str(vault_port + 1)):
        assert_refused(stack, "config vault_cluster_port: the 3 node(s)' API ports")


def test_a_seal_key_of_the_wrong_length_is_refused_without_repeating_it(stack):
    key = base64.b64encode(b"sixteen bytes!!!").decode()
    stack.set_config("dbcreds:vault_seal", auto.ConfigValue("static"), path=False)
    stack.set_config("dbcreds:vault_seal_key", auto.ConfigValue(key, secret=True), path=False)
    try:
        assert_refused(stack, "config vault_seal_key: must be 32 bytes (an AES-256 key), got 16 bytes")
        with pytest.raises(auto.CommandError) as preview:
            stack.preview(on_output=quiet)
        assert key not in str(preview.value)
        # Given in plain text, it is refused for that first.
        stack.set_config("dbcreds:vault_seal_key", auto.ConfigValue(key), path=False)
        assert_refused(stack, "config vault_seal_key: is stored in plain text")
    finally:
        stack.remove_config("dbcreds:vault_seal_key")
        stack.remove_config("dbcreds:vault_seal")


def test_a_port_in_use_is_refused_naming_it(stack):
    port = free_port()
    with socket.socket() as taken, changed_config(stack, "dbcreds:db_port", str(port)):
        taken.bind(("127.0.0.1", port))
        taken.listen()
        assert_refused(stack, f"property port value {{{port}}} has a problem: 127.0.0.1:{port} is already in use")


def test_a_missing_server_binary_is_refused_naming_it(stack, tmp_path):
    stack.workspace.env_vars["DBCREDS_PG_BIN"] = str(tmp_path / "no-postgres")
    try:
        assert_refused(stack, f"no PostgreSQL server binaries in {tmp_path / 'no-postgres'}")
    finally:
        del stack.workspace.env_vars["DBCREDS_PG_BIN"]


def test_cockroachdb_without_its_binary_is_refused_naming_the_engine(stack, tmp_path):
    # The binary is pinned to a missing path, so the case holds on a machine that has one too.
    stack.workspace.env_vars["DBCREDS_COCKROACH"] = str(tmp_path / "no-cockroach")
    try:
        with changed_config(stack, "dbcreds:db_engine", "cockroachdb"):
            assert_refused(stack, "config db_engine: cockroachdb runs here as a local process: no cockroach binary")
    finally:
        del stack.workspace.env_vars["DBCREDS_COCKROACH"]


def test_a_grant_the_database_refuses_fails_the_up_in_one_line_naming_it(stack):
    """A table that does not exist passes preview (only the database knows it), then fails the up in
    the group role's provider: the error names the group and the statement, then PostgreSQL's message,
    without the driver's frames (the SDK's provider server still prints its own above it); the
    transaction leaves the database, and the up the state, as they were."""
    before = resources(stack)
    with changed_config(stack, *roles(app=role(tables=["public.nope"]))):
        stack.preview(on_output=quiet)
        with pytest.raises(auto.CommandError) as up:
            stack.up(on_output=quiet)
    output = str(up.value)
    assert ("""group role 'dbcreds_group_app': GRANT SELECT, INSERT ON TABLE "public"."nope" TO "dbcreds_group_app": """
            """relation "public.nope" does not exist""") in output, output
    assert "site-packages/psycopg" not in output and "During handling" not in output, output
    assert resources(stack) == before


def test_a_wrong_passphrase_is_refused_and_the_state_kept(stack, tmp_path):
    env = stack.workspace.env_vars
    right = env["PULUMI_CONFIG_PASSPHRASE_FILE"]
    wrong = tmp_path / "wrong-passphrase"
    wrong.write_text("not the passphrase")
    before = json.dumps(resources(stack), sort_keys=True)
    env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(wrong)
    try:
        for run in (stack.preview, stack.up):
            with pytest.raises(auto.CommandError, match="incorrect passphrase"):
                run(on_output=quiet)
    finally:
        env["PULUMI_CONFIG_PASSPHRASE_FILE"] = right
    assert json.dumps(resources(stack), sort_keys=True) == before


def test_after_every_case_the_stack_is_as_declared(stack):
    """Runs last in this module: the refused changes left nothing to converge."""
    assert_only_the_checks_change(stack)
