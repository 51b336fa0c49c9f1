"""The external target: an OpenBao and a PostgreSQL that this test starts and runs as their operators
would (outside any stack), and the platform program configuring the engine, clients and checks on
them. The stack starts nothing, and its destroy leaves both servers running and as it found them. Its
token has exactly the capabilities the stack checks for (the audit log shows it used them and no
other); drift made by hand in that Vault is put back by the next `up`, and a right taken back is refused
by it. A stack admin without CREATEROLE or the tables, and a token short of a path, are refused by `up`
naming each, with nothing of the stack's made. A team's credential, made there too, writes a role in its
own mount and issues through it, and reads nothing of the platform's. A second stack with a vault_prefix shares the OpenBao (on
a PostgreSQL of its own) and comes and goes without touching the first one's; so do two stacks with the
same names in two OpenBao namespaces (vault_namespace)."""

import concurrent.futures
import contextlib
import json
import re
import secrets
import subprocess
from pathlib import Path
from typing import Any, Iterator

import hvac
import psycopg
import pytest
from psycopg import sql
from pulumi import automation as auto

from components.external_rights import from_root_namespace, policy_hcl
from components.servers.openbao import INIT_TIMEOUT_SECONDS, LocalOpenBao, initialize, unseal
from components.postgres_sql import (DEMO_SCHEMA, TeamDatabaseNames, team_creation_statements, team_renew_statements,
                                     team_revocation_statements)
from stacks.config import StackConfig, validate_settings
from stacks.external_target import vault_capabilities
from tests.automation import make_down, root_program, stack_file_config, state_text, temporary_stack
from tests.support.certs import issue_certificate, make_ca
from tests.support.ports import free_ports
from tests.support.secret_scan import failing_up, plaintext_secrets, role_broken_by_hand, search
from tests.support.postgres import running_postgres
from toolchain.env import ROOT

#: The database's operator's role for the stack: an RDS-like master, no superuser.
STACK_ADMIN = "app_master"
#: What the dev stack file says beyond its servers: the roles, service users, clients and cap.
SHARED = ("roles", "service_users", "clients", "max_ttl_cap", "db_name", "db_admin")
#: The rows DEMO_SCHEMA seeds into public.users (Ada, Alan, Grace).
SEEDED_USERS = 3
#: The file audit device the server's config declares (components/servers/openbao.py's openbao_hcl).
AUDIT_STANZA = re.compile(r'^audit "file" "file" \{\n  options \{\n(    .*\n)+  \}\n\}\n', re.M)


def server_processes(*folders: Path) -> set[int]:
    """The OpenBao and PostgreSQL server processes whose command line names one of folders (the other
    test worker runs servers of its own)."""
    found = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        named = any(str(folder).encode() in arg for folder in folders for arg in argv)
        if argv and (argv[0].endswith(b"/bao") or argv[0].endswith(b"postgres")) and named:
            found.add(int(proc.name))
    return found


def roles_like(db, pattern: str) -> list[str]:
    with db.as_superuser() as conn:
        return [r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s ORDER BY 1",
                                           (pattern,))]


@contextlib.contextmanager
def operator_openbao(folder: Path, database_ca_pem: str, audited: bool = True) -> Iterator[tuple[LocalOpenBao, str]]:
    """(an OpenBao its operator runs, initialised and unsealed, with its root token); without the file
    audit device its config declares unless audited, and so with no audit device at all (OpenBao takes
    them from its config only)."""
    ca = make_ca("external Vault CA", validity_hours=2)
    cert = issue_certificate(ca["cert_pem"], ca["private_key_pem"], "localhost", ["localhost"], ["127.0.0.1"],
                             server=True, client=False, validity_hours=2)
    bao = LocalOpenBao(folder, *free_ports(2))
    # Its operator put the database's CA where the server runs (OpenBao's plugin reads it as a file).
    bao.configure(ca["cert_pem"], cert["cert_pem"], cert["private_key_pem"], database_ca_pem)
    if not audited:
        config = bao.data_dir / "config.hcl"
        text, removed = AUDIT_STANZA.subn("", config.read_text())
        assert removed == 1, text
        config.write_text(text)
    bao.start()
    try:
        client = bao.client(timeout=INIT_TIMEOUT_SECONDS)
        token, keys = initialize(client, 1, 1)
        unseal(client, keys)
        yield bao, token
    finally:
        bao.stop()


@contextlib.contextmanager
def operator_postgres() -> Iterator[tuple[Any, str]]:
    """(a PostgreSQL its operator runs, with the stack admin's role and the application's database and
    tables, owned by it; the stack admin's password)."""
    with running_postgres(bootstrapped=False) as db:
        password = secrets.token_urlsafe(24)
        with db.as_superuser() as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
                sql.Identifier(STACK_ADMIN), sql.Literal(password)))
            conn.execute(sql.SQL("GRANT pg_signal_backend TO {} WITH ADMIN OPTION").format(sql.Identifier(STACK_ADMIN)))
            conn.execute(sql.SQL("CREATE DATABASE app OWNER {}").format(sql.Identifier(STACK_ADMIN)))
        with db.connect(STACK_ADMIN, password, autocommit=True) as conn:
            for statement in DEMO_SCHEMA:  # The application's tables, owned by the master.
                conn.execute(statement)
        yield db, password


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """(OpenBao, its root token, the database, the stack admin's password), as their operators run them."""
    tmp = tmp_path_factory.mktemp("external-servers")
    with operator_postgres() as (db, password):
        with operator_openbao(tmp / "openbao", db.ca_file.read_text()) as (bao, token):
            yield bao, token, db, password


def external_config(bao: LocalOpenBao, token: str, db, password: str, data_dir: Path) -> dict[str, auto.ConfigValue]:
    dev = stack_file_config("dev")
    return {
        # Every stack file names one (the external target keeps nothing there).
        "dbcreds:data_dir": auto.ConfigValue(str(data_dir)),
        **{f"dbcreds:{k}": dev[f"dbcreds:{k}"] for k in SHARED if f"dbcreds:{k}" in dev},
        "dbcreds:target": auto.ConfigValue("external"),
        "dbcreds:vault_addr": auto.ConfigValue(bao.address),
        "dbcreds:vault_ca_file": auto.ConfigValue(str(bao.ca_file)),
        "dbcreds:vault_database_ca_file": auto.ConfigValue(str(bao.database_ca_file)),
        "dbcreds:vault_token": auto.ConfigValue(token, secret=True),
        "dbcreds:db_host": auto.ConfigValue("127.0.0.1"),
        "dbcreds:db_port": auto.ConfigValue(str(db.server.port)),
        "dbcreds:db_ca_file": auto.ConfigValue(str(db.ca_file)),
        "dbcreds:db_stack_admin": auto.ConfigValue(STACK_ADMIN),
        "dbcreds:db_stack_admin_password": auto.ConfigValue(password, secret=True),
    }


def stack_config(config: dict[str, auto.ConfigValue]) -> StackConfig:
    """The validated config of a test stack set with config (as the program reads it)."""
    return validate_settings({k.removeprefix("dbcreds:"): v.value for k, v in config.items()}, "external", ROOT)


def operator_token(vault: hvac.Client, name: str, required: dict[str, tuple[str, ...]]) -> str:
    """A token of a policy `name` granting exactly `required` (not even the default policy), as the
    Vault's operator would give the stack."""
    vault.sys.create_or_update_acl_policy(name, policy_hcl(required))
    made = vault.auth.token.create(policies=[name], ttl="2h", no_parent=True, no_default_policy=True)
    return made["auth"]["client_token"]


def a_right_taken_back_is_refused_by_the_next_up(stack: auto.Stack, vault: hvac.Client, address: str, policy: str,
                                                 required: dict[str, tuple[str, ...]]) -> None:
    """The operator takes back the stack token's rights on one role (its policy `policy` granted
    `required`): the next `up` is refused naming that path, and changes nothing in Vault; given back,
    the stack is as it was."""
    before = what_a_stack_holds(vault, "database", "approle", ["client-app", "client-reader"])
    vault.sys.create_or_update_acl_policy(policy, policy_hcl(
        {path: caps for path, caps in required.items() if path != "database/roles/app"}))
    try:
        with pytest.raises(auto.CommandError) as failed:
            stack.up(on_output=lambda _: None)
        message = str(failed.value)
        assert ("config vault_token: the token lacks capabilities this stack needs in the Vault at "
                f"{address}, by path: database/roles/app (create, read, update, delete)") in message, message[-3000:]
        assert what_a_stack_holds(vault, "database", "approle", ["client-app", "client-reader"]) == before
    finally:
        vault.sys.create_or_update_acl_policy(policy, policy_hcl(required))


def createrole_taken_back_is_refused_by_the_next_up(stack: auto.Stack, db) -> None:
    """The database's operator takes CREATEROLE from the stack admin: the next `up` is refused naming it,
    before anything is made; given back, the stack is as it was."""
    role = sql.Identifier(STACK_ADMIN)
    with db.as_superuser() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} NOCREATEROLE").format(role))
    try:
        with pytest.raises(auto.CommandError) as failed:
            stack.up(on_output=lambda _: None)
        message = str(failed.value)
        assert (f"config db_stack_admin: the stack admin '{STACK_ADMIN}' cannot make this stack's roles and grants "
                "in database 'app': it lacks CREATEROLE; its operator fixes that") in message, message[-3000:]
    finally:
        with db.as_superuser() as conn:
            conn.execute(sql.SQL("ALTER ROLE {} CREATEROLE").format(role))


def paths_requested(audit_log: Path, policy: str) -> set[str]:
    """The paths the requests of tokens holding policy went to, as Vault's audit log has them."""
    entries = (json.loads(line) for line in audit_log.read_text().splitlines() if line.strip())
    return {e["request"]["path"] for e in entries
            if e.get("type") == "request" and policy in (e.get("auth") or {}).get("policies", [])}


#: The other stack's vault_prefix: its names in the shared Vault.
PREFIX = "team-b"


def what_a_stack_holds(vault: hvac.Client, mount: str, auth: str, policies: list[str]) -> dict:
    """What a stack made in a Vault: its engine's connection and roles, its AppRole roles and their
    role_ids, and its policies' text."""
    return {"connections": vault.list(f"{mount}/config")["data"]["keys"],
            "roles": vault.list(f"{mount}/roles")["data"]["keys"],
            "static_roles": vault.list(f"{mount}/static-roles")["data"]["keys"],
            "approle_roles": {role: vault.read(f"auth/{auth}/role/{role}/role-id")["data"]["role_id"]
                              for role in vault.list(f"auth/{auth}/role")["data"]["keys"]},
            "policies": {name: vault.sys.read_acl_policy(name)["data"]["policy"] for name in policies}}


def changed_by(stack: auto.Stack, refresh: bool = False) -> list[str]:
    """Each resource an `up` of stack (refreshing first, if told) changes, as `<op> <type> <name>`."""
    events: list[auto.EngineEvent] = []
    stack.up(on_output=lambda _: None, on_event=events.append, refresh=refresh)
    steps = [e.resource_pre_event.metadata for e in events if e.resource_pre_event]
    ops = ((auto.OpType(m.op).value, m) for m in steps)
    return sorted(f"{op} {m.type} {m.urn.rsplit('::', 1)[-1]}" for op, m in ops
                  if op not in ("same", "read", "refresh"))


def drift_in_vault_is_put_back(stack: auto.Stack, vault: hvac.Client) -> None:
    """A role's creation SQL and a client's policy changed by hand in the operator's Vault (root token):
    the next `up` (refreshing, as make up does) updates those two and puts both back as declared."""
    role, policy = vault.read("database/roles/app")["data"], vault.sys.read_acl_policy("client-app")["data"]["policy"]
    vault.write("database/roles/app", db_name=role["db_name"], revocation_statements=role["revocation_statements"],
                creation_statements=['CREATE ROLE "{{name}}" WITH LOGIN PASSWORD \'{{password}}\' '
                                     'VALID UNTIL \'{{expiration}}\' IN ROLE pg_read_all_data'],
                default_ttl=role["default_ttl"], max_ttl=role["max_ttl"])
    vault.sys.create_or_update_acl_policy("client-app", 'path "database/*" { capabilities = ["read", "list"] }')
    assert vault.read("database/roles/app")["data"]["creation_statements"] != role["creation_statements"]
    changed = changed_by(stack, refresh=True)
    assert "update vault:database/secretBackendRole:SecretBackendRole engine-role-app" in changed, changed
    assert "update vault:index/policy:Policy app-policy" in changed, changed
    assert vault.read("database/roles/app")["data"]["creation_statements"] == role["creation_statements"]
    assert vault.sys.read_acl_policy("client-app")["data"]["policy"] == policy


def another_stack_shares_the_vault(stack: auto.Stack, outputs: dict, lease: dict, servers, tmp_path: Path,
                                   capfd) -> None:
    """A second stack, vault_prefix team-b, in the Vault of stack (no prefix; its app client holds
    lease), on a database of its own: it issues its own credentials, and neither client reaches the
    other's; its make down takes back its own mounts, policies and leases only, and stack's checks
    still pass, its next `up` changing nothing but what runs at every update."""
    from toolchain.drift import EVERY_UPDATE

    bao, token, db, _ = servers
    vault = bao.client(token)
    ours = ["client-app", "client-reader"]
    before = what_a_stack_holds(vault, "database", "approle", ours)
    tmp_path.mkdir()
    with operator_postgres() as (db_b, password_b), \
            temporary_stack(root_program(tmp_path), tmp_path, "external-b") as other:
        config = external_config(bao, token, db_b, password_b, tmp_path / "data")
        # Vault runs on this host: it reads this database's CA where the stack does.
        config["dbcreds:vault_database_ca_file"] = auto.ConfigValue(str(db_b.ca_file))
        other.set_all_config({**config, "dbcreds:vault_prefix": auto.ConfigValue(PREFIX)})
        result = other.up(on_output=lambda _: None)
        theirs = {k: v.value for k, v in result.outputs.items()}
        assert theirs["checks"]["passed"], [c for c in theirs["checks"]["checks"] if not c.get("passed", True)]
        assert (theirs["database_mount"], theirs["approle_mount"]) == (f"{PREFIX}-database", f"{PREFIX}-approle")
        assert {name: (c["approle_mount"], c["creds_path"]) for name, c in theirs["clients"].items()} == {
            "app": (f"{PREFIX}-approle", f"{PREFIX}-database/creds/app"),
            "reader": (f"{PREFIX}-approle", f"{PREFIX}-database/creds/reader")}
        held = what_vault_holds(vault)
        assert {"database/", f"{PREFIX}-database/"} <= set(held["mounts"]), held
        assert {"approle/", f"{PREFIX}-approle/"} <= set(held["auth"]), held
        assert {*ours, f"{PREFIX}-client-app", f"{PREFIX}-client-reader"} <= set(held["policies"]), held
        # Each issues its own credentials, in its own database; neither client reaches the other's.
        app_b = theirs["clients"]["app"]
        client_b = hvac.Client(url=bao.address, verify=str(bao.ca_file))
        client_b.auth.approle.login(role_id=app_b["role_id"], secret_id=app_b["secret_id"],
                                    mount_point=app_b["approle_mount"])
        lease_b = client_b.read(app_b["creds_path"])
        assert lease_b["lease_id"].startswith(f"{PREFIX}-database/creds/app/")
        assert roles_like(db_b, "v\\_%") == [lease_b["data"]["username"]]
        assert roles_like(db, "v\\_app\\_%") == [lease["data"]["username"]]
        app_a = outputs["clients"]["app"]
        client_a = hvac.Client(url=bao.address, verify=str(bao.ca_file))
        client_a.auth.approle.login(role_id=app_a["role_id"], secret_id=app_a["secret_id"],
                                    mount_point=app_a["approle_mount"])
        for client, path in ((client_a, app_b["creds_path"]), (client_b, app_a["creds_path"])):
            with pytest.raises(hvac.exceptions.Forbidden):
                client.read(path)

        said = make_down(other, capfd)
        assert f"revoking 1 lease(s) under {PREFIX}-database/" in said and "no role of the stack's left" in said, said
        # Its own is gone from Vault and its database ...
        held = what_vault_holds(vault)
        assert not [name for names in held.values() for name in names if name.startswith(PREFIX)], held
        assert roles_like(db_b, "dbcreds_%") == [] and roles_like(db_b, "v_%") == []
    # ... and stack's is as it was: its engine, roles, logins and policies, the lease and its user.
    assert what_a_stack_holds(vault, "database", "approle", ours) == before
    assert vault.sys.read_lease(lease["lease_id"])["data"]["id"] == lease["lease_id"]
    assert roles_like(db, "v\\_app\\_%") == [lease["data"]["username"]]
    # Its next `up` changes what runs at every update only (the external Vault's audit devices are read
    # again too), and its checks pass.
    changed = changed_by(stack)
    assert "update pulumi-python:dynamic/dbcreds:VaultAuditDevices vault-audit" in changed, changed
    assert [c for c in changed if c.split()[1] not in EVERY_UPDATE] == [], changed
    report = stack.outputs()["checks"].value
    assert report["passed"], [c for c in report["checks"] if not c.get("passed", True)]


def no_secret_where_people_look(stack: auto.Stack, servers, given: str, said: list[str], data_dir: Path) -> None:
    """After the `up` (what it said) and a failing one (the app's role edited by hand in the operator's
    Vault, its users made outside their group: the checks log in, issue and fail), no secret of the state,
    nor the token or the stack admin's password, is in what either said, the state file, `pulumi stack
    output`, the servers' logs (OpenBao's and its audit log, PostgreSQL's) or the stack's data folder; the
    database's log holds the failure, so the texts searched are the right ones."""
    bao, root_token, db, password = servers
    with role_broken_by_hand(bao.client(root_token), "database/creds/app"):
        said.append(failing_up(stack))
    assert "app: allowed statements run over verify-full" in said[-1], said[-1][-3000:]
    secrets_held = {**plaintext_secrets(stack), "config vault_token": given, "config db_stack_admin_password": password}
    # Sanity: the search has the stack's secrets to look for (the admin's first password, the secret_ids,
    # the Vault provider's token), and finds one where it is meant to be: the decrypted state.
    kinds = {n.split(".", 1)[1].split("[")[0] for n in secrets_held if "." in n}
    assert {"admin_bootstrap_password", "secretId", "secret_id", "dbcreds:vault_token"} <= kinds, sorted(kinds)
    assert search(secrets_held, json.dumps(stack.export_stack().deployment), "the decrypted state")
    cli = subprocess.run([str(ROOT / ".tools" / "bin" / "pulumi"), "stack", "output", "--json", "--stack", stack.name],
                         cwd=stack.workspace.work_dir, env={**stack.workspace.env_vars}, capture_output=True,
                         text=True, check=True)
    database_logs = [p for p in db.server.data_dir.resolve().rglob("*.log") if p.is_file()]
    assert any("permission denied for" in p.read_bytes().decode("latin-1") for p in database_logs), database_logs
    places = {"what the ups said": "\n".join(said), "the state file": state_text(stack),
              "pulumi stack output": cli.stdout + cli.stderr,
              **{str(p): p.read_bytes().decode("latin-1") for p in (bao.data_dir / "server.log", bao.audit_log,
                                                                     *database_logs)},
              **{str(p): p.read_bytes().decode("latin-1") for p in data_dir.rglob("*") if p.is_file()}}
    hits = [hit for where, text in places.items() for hit in search(secrets_held, text, where)]
    assert hits == []


def required_by(pattern: str, path: str) -> bool:
    """Whether a request to path is one the required path pattern names (`+`: any one segment)."""
    wanted, asked = pattern.split("/"), path.split("/")
    return len(wanted) == len(asked) and all(w in ("+", a) for w, a in zip(wanted, asked))


def a_teams_credential_issues_in_its_own_mount_only(bao: LocalOpenBao, db, team: dict) -> dict:
    """The team's credential (the stack's `teams` output) logs in, writes a role in its own mount whose
    SQL calls the team's functions, and issues a user that connects with verify-full and reads what the
    team's grant allows, and no more; it reads neither the platform's connection nor its clients'
    credentials. The lease it took is left for make down."""
    vault = hvac.Client(url=bao.address, verify=str(bao.ca_file))
    vault.auth.approle.login(role_id=team["role_id"], secret_id=team["secret_id"], mount_point=team["approle_mount"])
    names, mount = TeamDatabaseNames("reports"), team["database_mount"]
    vault.write(f"{mount}/roles/reports", db_name=team["connection_name"],
                creation_statements=team_creation_statements(names), renew_statements=team_renew_statements(names),
                revocation_statements=team_revocation_statements(names), default_ttl=300, max_ttl=600)
    lease = vault.read(f"{mount}/creds/reports")
    with psycopg.connect(host="127.0.0.1", port=db.server.port, dbname="app", user=lease["data"]["username"],
                         password=lease["data"]["password"], sslmode="verify-full", sslrootcert=str(db.ca_file),
                         autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM public.orders").fetchone()[0] >= 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM public.users")
    for path in ("database/config/app", "database/creds/app", f"{mount}/config/app"):
        with pytest.raises(hvac.exceptions.Forbidden):
            vault.read(path)
    return lease


def test_the_stack_configures_servers_it_did_not_start_and_takes_back_only_its_own(servers, tmp_path, capfd):
    bao, token, db, password = servers
    # The servers' own processes, and any a stack would start under its data folder or the test's.
    folders = (bao.data_dir, db.server.data_dir.resolve(), tmp_path)
    running_before = server_processes(*folders)
    assert len(running_before) == 2
    vault = bao.client(token)
    with temporary_stack(root_program(tmp_path), tmp_path, "external") as stack:
        config = external_config(bao, token, db, password, tmp_path / "data")
        # dev's team too, made as the stack admin.
        config["dbcreds:teams"] = stack_file_config("dev")["dbcreds:teams"]
        # The operator gives the stack a token with exactly the capabilities it checks for, not root:
        # its up, checks and make down need no more.
        required = vault_capabilities(stack_config(config))
        given = operator_token(vault, "dbcreds-stack", required)
        config["dbcreds:vault_token"] = auto.ConfigValue(given, secret=True)
        stack.set_all_config(config)
        said: list[str] = []
        result = stack.up(on_output=said.append)
        outputs = {k: v.value for k, v in result.outputs.items()}
        report = outputs["checks"]
        assert report["passed"], [c for c in report["checks"] if not c.get("passed", True)]
        assert outputs["vault_admin_token"] == given
        names = {c["name"] for c in report["checks"]}
        assert {"the bootstrap admin password is rejected (root rotated)", "app: revoked (lease id in the body) user cannot log in",
                "dynamic users hold nothing beyond their role's group",
                "static role svc_reporting: its current password logs in"} <= names, names
        assert outputs["target"] == "external"
        assert outputs["vault_audit_log"] == f"file/ (file, file_path={bao.audit_log})"
        # The stack started no server: the same OpenBao and PostgreSQL processes as before.
        assert server_processes(*folders) == running_before
        # What it made in the database, as the master: Vault's admin, the groups, the service user, the
        # team's group and connection user (its first password refused: Vault rotated it).
        assert roles_like(db, "dbcreds_%") == ["dbcreds_admin", "dbcreds_group_app", "dbcreds_group_reader",
                                               "dbcreds_team_reports", "dbcreds_team_reports_vault"]
        assert "dbcreds_team_reports_vault: its retired static password no longer logs in" in names, names
        team_lease = a_teams_credential_issues_in_its_own_mount_only(bao, db, outputs["teams"]["reports"])
        assert roles_like(db, "svc_reporting") == ["svc_reporting"]
        # Neither secret is in the state file in plain text.
        state = state_text(stack)
        assert given not in state
        assert password not in state
        no_secret_where_people_look(stack, servers, given, said, tmp_path / "data")

        drift_in_vault_is_put_back(stack, vault)
        a_right_taken_back_is_refused_by_the_next_up(stack, vault, bao.address, "dbcreds-stack", required)
        createrole_taken_back_is_refused_by_the_next_up(stack, db)

        # A credential still out when the stack comes down.
        app = outputs["clients"]["app"]
        client = hvac.Client(url=bao.address, verify=str(bao.ca_file))
        client.auth.approle.login(role_id=app["role_id"], secret_id=app["secret_id"],
                                  mount_point=app["approle_mount"])
        lease = client.read(app["creds_path"])
        # Its user, and the team's.
        assert len(roles_like(db, "v\\_app\\_%")) == 1 and len(roles_like(db, "v\\_%")) == 2

        # Another stack in the same Vault, its names prefixed, comes and goes: this one's stays as it is.
        another_stack_shares_the_vault(stack, outputs, lease, servers, tmp_path / "team-b", capfd)

        said = make_down(stack, capfd)
        assert "revoking 1 lease(s) under database/" in said and "no role of the stack's left" in said, said
        assert "revoking 1 lease(s) under team-reports-db/" in said, said
        assert team_lease["data"]["username"] not in roles_like(db, "v\\_%")
    # Its token's requests (up, refresh, checks, make down), as Vault's audit log has them, went to the
    # paths it was asked for and to no other; and to each of them but two whose turn never came here: the
    # reader's leases (none was out at make down) and the mount's tuning (its lifetimes never changed).
    used = paths_requested(bao.audit_log, "dbcreds-stack")
    beyond = {path for path in used if not any(required_by(pattern, path) for pattern in required)}
    assert beyond == set(), sorted(beyond)
    unused = {pattern for pattern in required if not any(required_by(pattern, path) for path in used)}
    assert unused == {"sys/leases/lookup/database/creds/reader/", "sys/mounts/database/tune",
                      "sys/mounts/team-reports-db/tune"}, sorted(unused)
    # Its own is gone; the servers run on, as their operators left them.
    assert roles_like(db, "dbcreds_%") == [] and roles_like(db, "v_%") == [] and roles_like(db, "svc_%") == []
    with db.as_superuser("app") as conn:  # The team's functions' schema went with it.
        assert conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'dbcreds%'").fetchall() == []
    assert "database/" not in vault.sys.list_mounted_secrets_engines()["data"]
    assert "approle/" not in vault.sys.list_auth_methods()["data"]
    with db.connect(STACK_ADMIN, password) as conn:
        assert conn.execute("SELECT count(*) FROM public.users").fetchone()[0] == SEEDED_USERS
    assert server_processes(*folders) == running_before


def test_a_secret_set_in_plain_text_is_refused_naming_it(servers, tmp_path):
    bao, token, db, password = servers
    with temporary_stack(root_program(tmp_path), tmp_path, "external") as stack:
        config = external_config(bao, token, db, password, tmp_path / "data")
        config["dbcreds:db_stack_admin_password"] = auto.ConfigValue(password)
        stack.set_all_config(config)
        with pytest.raises(auto.CommandError) as error:
            stack.preview(on_output=lambda _: None)
        assert "config db_stack_admin_password: is stored in plain text" in str(error.value)
        assert password not in str(error.value)
    assert roles_like(db, "dbcreds_%") == []


def what_vault_holds(vault: hvac.Client) -> dict[str, list[str]]:
    """What a stack could make in a Vault: secrets engines, auth methods, policies, audit devices."""
    return {"mounts": sorted(vault.sys.list_mounted_secrets_engines()["data"]),
            "auth": sorted(vault.sys.list_auth_methods()["data"]),
            "policies": sorted(vault.sys.list_acl_policies()["data"]["keys"]),
            "audit": sorted(vault.sys.list_enabled_audit_devices()["data"])}


def test_a_vault_without_an_audit_device_is_refused_by_up_and_nothing_is_made_in_it(servers, tmp_path):
    """The stack's `up` against an external OpenBao whose operator enabled no audit device: it fails
    naming the Vault and the missing device, and nothing of the stack is made in that Vault."""
    _, _, db, password = servers
    with operator_openbao(tmp_path / "unaudited", db.ca_file.read_text(), audited=False) as (bao, token):
        vault = bao.client(token)
        before = what_vault_holds(vault)
        assert before == {"mounts": ["cubbyhole/", "identity/", "sys/"], "auth": ["token/"],
                          "policies": ["default", "root"], "audit": []}
        with temporary_stack(root_program(tmp_path), tmp_path, "external") as stack:
            stack.set_all_config(external_config(bao, token, db, password, tmp_path / "data"))
            with pytest.raises(auto.CommandError) as failed:
                stack.up(on_output=lambda _: None)
            message = str(failed.value)
            assert (f"the Vault at {bao.address} has no audit device enabled: enable one (its operator) before "
                    "this stack configures credentials in it") in message, message[-3000:]
            assert token not in message and password not in message
            assert what_vault_holds(vault) == before
            made = stack.export_stack().deployment.get("resources") or []
            assert [r["type"] for r in made if r["type"].startswith("vault:")] == []
        assert what_vault_holds(vault) == before
    # What the stack made in the database meanwhile went with its destroy.
    assert roles_like(db, "dbcreds_%") == [] and roles_like(db, "svc_%") == []


def vault_resources(stack: auto.Stack) -> list[str]:
    """The types of what the stack's state holds in Vault."""
    made = stack.export_stack().deployment.get("resources") or []
    return [r["type"] for r in made if r["type"].startswith("vault:")]


def test_a_stack_admin_without_createrole_or_the_tables_is_refused_by_up_naming_each_and_nothing_is_made(
        servers, tmp_path):
    """A stack admin with no CREATEROLE that owns none of what the grant specs grant on: `up` fails
    naming the attribute and each schema, table and sequence with its owner, before anything is made in
    the database or in Vault; given CREATEROLE (and pg_signal_backend to grant), it is refused for the
    ownership alone."""
    bao, token, db, _ = servers
    vault = bao.client(token)
    before = what_vault_holds(vault)
    weak, weak_password = sql.Identifier("weak_master"), secrets.token_urlsafe(24)
    with db.as_superuser() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(weak, sql.Literal(weak_password)))
    owned = ("schema public (owner: pg_database_owner), table public.orders (owner: app_master), "
             "table public.users (owner: app_master), sequence public.orders_id_seq (owner: app_master), "
             "sequence public.users_id_seq (owner: app_master)")

    def refused(stack: auto.Stack, lacks: str) -> None:
        with pytest.raises(auto.CommandError) as failed:
            stack.up(on_output=lambda _: None)
        message = str(failed.value)
        assert (f"config db_stack_admin: the stack admin 'weak_master' cannot make this stack's roles and grants in "
                f"database 'app': {lacks}it does not own {owned}; its operator fixes that (this up made and "
                "changed nothing in the database)") in message, message[-3000:]
        assert weak_password not in message and token not in message
        # Nothing of the stack's in the database, nor in Vault.
        assert roles_like(db, "dbcreds_%") == [] and roles_like(db, "svc_%") == []
        assert what_vault_holds(vault) == before and vault_resources(stack) == []

    try:
        with temporary_stack(root_program(tmp_path), tmp_path, "external") as stack:
            config = external_config(bao, token, db, weak_password, tmp_path / "data")
            config["dbcreds:db_stack_admin"] = auto.ConfigValue("weak_master")
            stack.set_all_config(config)
            refused(stack, "it lacks CREATEROLE; it may not grant pg_signal_backend (it needs it WITH ADMIN OPTION); ")
            with db.as_superuser() as conn:
                conn.execute(sql.SQL("ALTER ROLE {} CREATEROLE").format(weak))
                conn.execute(sql.SQL("GRANT pg_signal_backend TO {} WITH ADMIN OPTION").format(weak))
            refused(stack, "")
    finally:
        with db.as_superuser() as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(weak))


def test_a_token_without_the_capabilities_the_stack_needs_is_refused_by_up_naming_each_path(servers, tmp_path):
    """The operator's token lacks the AppRole mount's path and sudo on the audit devices: `up` fails
    naming both paths and what each lacks, and nothing is made in that Vault."""
    bao, token, db, password = servers
    vault = bao.client(token)
    with temporary_stack(root_program(tmp_path), tmp_path, "external") as stack:
        config = external_config(bao, token, db, password, tmp_path / "data")
        required = vault_capabilities(stack_config(config))
        del required["sys/auth/approle"]
        required["sys/audit"] = ("read",)
        narrow = operator_token(vault, "dbcreds-narrow", required)
        try:
            before = what_vault_holds(vault)
            config["dbcreds:vault_token"] = auto.ConfigValue(narrow, secret=True)
            stack.set_all_config(config)
            with pytest.raises(auto.CommandError) as failed:
                stack.up(on_output=lambda _: None)
            message = str(failed.value)
            assert (f"config vault_token: the token lacks capabilities this stack needs in the Vault at "
                    f"{bao.address}, by path: sys/audit (sudo); sys/auth/approle (create, read, update, delete, "
                    "sudo); its operator grants them (this up made and changed nothing in that Vault)") in message, \
                message[-3000:]
            assert narrow not in message and token not in message and password not in message
            assert what_vault_holds(vault) == before and vault_resources(stack) == []
        finally:
            vault.auth.token.revoke(narrow)
            vault.sys.delete_acl_policy("dbcreds-narrow")


def namespaced(bao: LocalOpenBao, token: str, namespace: str) -> hvac.Client:
    """A client of bao that sends namespace (X-Vault-Namespace) with its requests."""
    return hvac.Client(url=bao.address, token=token, verify=str(bao.ca_file), namespace=namespace)


def test_two_stacks_with_the_same_names_in_two_namespaces_of_one_vault_keep_to_their_own(servers, tmp_path, capfd):
    """The operator makes two namespaces in its OpenBao and gives each stack a root-namespace token whose
    policy grants what the stack needs inside its namespace (and the root's audit devices' read: a token
    made inside a namespace cannot read them). Both stacks make the same names (database, approle,
    client-<name>), each in its namespace and none in the root one, each on a PostgreSQL of its own; each
    client issues in its namespace only; one's make down leaves the other's mounts, policies, roles and
    lease as they were, and the other's checks still pass."""
    bao, root_token, db, password = servers
    root = bao.client(root_token)
    namespaces = {"a": "ns-a", "b": "ns-b"}
    ours = ["client-app", "client-reader"]
    for namespace in namespaces.values():
        root.write(f"sys/namespaces/{namespace}")
    stacks: dict[str, auto.Stack] = {}
    try:
        with operator_postgres() as (db_b, password_b), contextlib.ExitStack() as held:
            databases = {"a": (db, password, bao.database_ca_file), "b": (db_b, password_b, db_b.ca_file)}
            outputs, leases, required = {}, {}, {}
            for key, namespace in namespaces.items():
                folder = tmp_path / key
                folder.mkdir()
                stack = held.enter_context(temporary_stack(root_program(folder), folder, f"external-ns-{key}"))
                database, stack_admin_password, on_vault = databases[key]
                config = external_config(bao, root_token, database, stack_admin_password, folder / "data")
                config["dbcreds:vault_database_ca_file"] = auto.ConfigValue(str(on_vault))
                config["dbcreds:vault_namespace"] = auto.ConfigValue(namespace)
                required[key] = from_root_namespace(vault_capabilities(stack_config(config)), namespace)
                assert required[key]["sys/audit"] == ("read", "sudo")
                assert required[key][f"{namespace}/sys/mounts/database"] == ("create", "read", "update", "delete")
                given = operator_token(root, f"dbcreds-{namespace}", required[key])
                config["dbcreds:vault_token"] = auto.ConfigValue(given, secret=True)
                stack.set_all_config(config)
                stacks[key] = stack
            before_root = what_vault_holds(root)
            # Both come up at once (their folders, databases and namespaces are their own).
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                ups = {key: pool.submit(stack.up, on_output=lambda _: None) for key, stack in stacks.items()}
                results = {key: up.result() for key, up in ups.items()}
            for key, namespace in namespaces.items():
                database = databases[key][0]
                outputs[key] = {k: v.value for k, v in results[key].outputs.items()}
                report = outputs[key]["checks"]
                assert report["passed"], [c for c in report["checks"] if not c.get("passed", True)]
                assert outputs[key]["vault_namespace"] == namespace
                assert (outputs[key]["database_mount"], outputs[key]["approle_mount"]) == ("database", "approle")
                # Nothing of the stack's in the root namespace; the audit devices were read there.
                assert what_vault_holds(root) == before_root
                assert outputs[key]["vault_audit_log"] == f"file/ (file, file_path={bao.audit_log})"
                # Its client logs in and issues in its namespace, on its own database.
                app = outputs[key]["clients"]["app"]
                client = namespaced(bao, "", namespace)
                client.auth.approle.login(role_id=app["role_id"], secret_id=app["secret_id"],
                                          mount_point=app["approle_mount"])
                leases[key] = client.read(app["creds_path"])
                assert leases[key]["lease_id"].startswith("database/creds/app/")
                assert roles_like(database, "v\\_%") == [leases[key]["data"]["username"]]
                # Without the namespace, the same login is no login.
                with pytest.raises(hvac.exceptions.Forbidden):
                    hvac.Client(url=bao.address, verify=str(bao.ca_file)).auth.approle.login(
                        role_id=app["role_id"], secret_id=app["secret_id"], mount_point=app["approle_mount"])
            vault_a, vault_b = namespaced(bao, root_token, "ns-a"), namespaced(bao, root_token, "ns-b")
            before_a = what_a_stack_holds(vault_a, "database", "approle", ours)
            before_b = what_a_stack_holds(vault_b, "database", "approle", ours)
            # The same names, made twice: each namespace its own role_ids.
            assert set(before_a["approle_roles"]) == set(before_b["approle_roles"]) == {"app", "reader"}
            assert before_a["approle_roles"]["app"] != before_b["approle_roles"]["app"]
            # A client of one namespace's stack reaches nothing of the other's, not even by naming it.
            client_a = namespaced(bao, "", "ns-a")
            app_a = outputs["a"]["clients"]["app"]
            client_a.auth.approle.login(role_id=app_a["role_id"], secret_id=app_a["secret_id"], mount_point="approle")
            client_a.adapter.namespace = "ns-b"
            with pytest.raises(hvac.exceptions.Forbidden):
                client_a.read("database/creds/app")

            said = make_down(stacks["b"], capfd)
            assert "revoking 1 lease(s) under database/ in namespace ns-b" in said, said
            assert "no role of the stack's left" in said, said
            # (A namespace has no audit devices of its own: they are the root namespace's.)
            held_b = {"mounts": sorted(vault_b.sys.list_mounted_secrets_engines()["data"]),
                      "auth": sorted(vault_b.sys.list_auth_methods()["data"]),
                      "policies": sorted(vault_b.sys.list_acl_policies()["data"]["keys"])}
            assert held_b == {"mounts": ["cubbyhole/", "identity/", "sys/"], "auth": ["token/"],
                              "policies": ["default"]}, held_b
            assert roles_like(db_b, "dbcreds_%") == [] and roles_like(db_b, "v_%") == []
            # The other namespace's stack is as it was: engine, roles, logins, policies, the lease and its user.
            assert what_a_stack_holds(vault_a, "database", "approle", ours) == before_a
            assert vault_a.sys.read_lease(leases["a"]["lease_id"])["data"]["id"] == leases["a"]["lease_id"]
            assert roles_like(db, "v\\_%") == [leases["a"]["data"]["username"]]
            result = stacks["a"].up(on_output=lambda _: None)
            report = result.outputs["checks"].value
            assert report["passed"], [c for c in report["checks"] if not c.get("passed", True)]

            said = make_down(stacks["a"], capfd)
            assert "revoking 1 lease(s) under database/ in namespace ns-a" in said, said
            assert roles_like(db, "dbcreds_%") == [] and roles_like(db, "v_%") == []
        # Each token's requests, as the audit log has them, went to its namespace's paths it was granted
        # (and the root's audit devices).
        for key, namespace in namespaces.items():
            used = paths_in_namespaces(bao.audit_log, f"dbcreds-{namespace}")
            assert used, namespace
            assert used - set(required[key]) == set(), sorted(used - set(required[key]))
    finally:
        for namespace in namespaces.values():
            with contextlib.suppress(hvac.exceptions.VaultError):
                root.sys.delete_acl_policy(f"dbcreds-{namespace}")
            root.delete(f"sys/namespaces/{namespace}")


def paths_in_namespaces(audit_log: Path, policy: str) -> set[str]:
    """The paths the requests of tokens holding policy went to, each as a root-namespace policy names it
    (`<namespace>/<path>` in a namespace), as Vault's audit log has them."""
    entries = (json.loads(line) for line in audit_log.read_text().splitlines() if line.strip())
    return {((e["request"].get("namespace") or {}).get("path") or "") + e["request"]["path"] for e in entries
            if e.get("type") == "request" and policy in (e.get("auth") or {}).get("policies", [])}
