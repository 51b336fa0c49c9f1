"""Grant spec validation: TTLs, privileges, names; every error names its field."""

import pytest

from components.grants import (
    ClientSpec,
    GrantSpec,
    SpecError,
    parse_ttl,
    validate_client_spec,
    validate_clients,
    validate_grant_spec,
)
from components.sql_dialects import DIALECTS

DAY = 86400


@pytest.mark.parametrize(
    "text, seconds",
    [("90s", 90), ("30m", 1800), ("1h", 3600), ("1h30m", 5400), ("7d", 7 * DAY), ("3600", 3600), (60, 60)],
)
def test_ttls_parse(text, seconds):
    assert parse_ttl(text, "f") == seconds


@pytest.mark.parametrize("text", ["", "1x", "h", "1.5h", "-1h", "0s", 0, True, None, "1h 30m", "1H"])
def test_bad_ttls_are_refused(text):
    with pytest.raises(SpecError) as error:
        parse_ttl(text, "roles.app.max_ttl")
    assert error.value.field == "roles.app.max_ttl"


def valid(**overrides):
    raw = {"privileges": ["SELECT"], "schemas": ["public"], "default_ttl": "1h", "max_ttl": "8h"}
    raw.update(overrides)
    return raw


def test_a_valid_spec():
    spec = validate_grant_spec("app", valid(privileges=["delete", "SELECT", "insert"]), max_ttl_cap=DAY)
    assert spec == GrantSpec(
        name="app", privileges=("SELECT", "INSERT", "DELETE"), schemas=("public",), tables=(),
        default_ttl=3600, max_ttl=8 * 3600,
    )


def test_tables_only():
    spec = validate_grant_spec("app", valid(schemas=None, tables=["public.users"]), max_ttl_cap=DAY)
    assert spec.tables == ("public.users",) and spec.schemas == ()


@pytest.mark.parametrize(
    "name, raw, field",
    [
        ("App", valid(), "roles.App"),
        ("a" * 17, valid(), "roles." + "a" * 17),
        ("a;b", valid(), "roles.a;b"),
        ("", valid(), "roles."),
        ("app", valid(privileges=[]), "roles.app.privileges"),
        ("app", valid(privileges=["ALL"]), "roles.app.privileges"),
        ("app", valid(privileges=["ALL PRIVILEGES"]), "roles.app.privileges"),
        ("app", valid(privileges=["SUPERUSER"]), "roles.app.privileges"),
        ("app", valid(privileges=["TRUNCATE"]), "roles.app.privileges"),
        ("app", valid(privileges=["SELECT", "SELECT"]), "roles.app.privileges"),
        ("app", valid(privileges="SELECT"), "roles.app.privileges"),
        ("app", valid(schemas=['pub"lic']), "roles.app.schemas"),
        ("app", valid(schemas=["public; DROP TABLE x"]), "roles.app.schemas"),
        ("app", valid(schemas=["schéma"]), "roles.app.schemas"),
        ("app", valid(tables=["users"]), "roles.app.tables"),
        ("app", valid(tables=["a.b.c"]), "roles.app.tables"),
        ("app", valid(schemas=[], tables=[]), "roles.app"),
        ("app", valid(default_ttl="2h", max_ttl="1h"), "roles.app.default_ttl"),
        ("app", valid(max_ttl="2d"), "roles.app.max_ttl"),
        ("app", valid(default_ttl="soon"), "roles.app.default_ttl"),
        ("app", valid(grant_option=True), "roles.app.grant_option"),
        ("app", "SELECT", "roles.app"),
    ],
)
def test_bad_specs_name_the_field(name, raw, field):
    with pytest.raises(SpecError) as error:
        validate_grant_spec(name, raw, max_ttl_cap=DAY)
    assert error.value.field == field
    assert str(error.value).startswith(field + ": ")


@pytest.mark.parametrize("dialect, privilege, problem", [
    # Another dialect's privilege, or no privilege at all: named as unknown here.
    ("postgresql", "ZONECONFIG", "is not a PostgreSQL table privilege"),
    ("postgresql", "SELEKT", "is not a PostgreSQL table privilege"),
    ("cockroachdb", "TRUNCATE", "is not a CockroachDB table privilege"),
    ("cockroachdb", "MAINTAIN", "is not a CockroachDB table privilege"),
    # Real in the dialect, but wider than a dynamic role may hold.
    ("postgresql", "TRUNCATE", "is wider than a dynamic role may hold"),
    ("cockroachdb", "ZONECONFIG", "is wider than a dynamic role may hold"),
    ("cockroachdb", "DROP", "is wider than a dynamic role may hold"),
])
def test_privileges_are_checked_against_the_dialect(dialect, privilege, problem):
    with pytest.raises(SpecError, match=problem) as error:
        validate_grant_spec("app", valid(privileges=[privilege]), max_ttl_cap=DAY, dialect=DIALECTS[dialect])
    assert error.value.field == "roles.app.privileges"


@pytest.mark.parametrize("dialect", ["postgresql", "cockroachdb"])
def test_both_dialects_take_the_four_table_privileges(dialect):
    spec = validate_grant_spec("app", valid(privileges=["SELECT", "INSERT", "UPDATE", "DELETE"]),
                               max_ttl_cap=DAY, dialect=DIALECTS[dialect])
    assert spec.privileges == ("SELECT", "INSERT", "UPDATE", "DELETE")


READER = GrantSpec(name="reader", privileges=("SELECT",), schemas=("public",))
APP = GrantSpec(name="app", privileges=("SELECT",), tables=("public.users",))


def client(**overrides):
    raw = {"role": "reader", "allowed": ["SELECT 1"], "forbidden": ["CREATE ROLE x"]}
    raw.update(overrides)
    return raw


def test_a_valid_client_with_defaults():
    (spec,) = validate_clients({"reporting": client()}, {"reader": READER}, DAY)
    assert spec == ClientSpec(name="reporting", role="reader", token_ttl=900, token_max_ttl=3600,
                              secret_id_ttl=DAY, allowed=("SELECT 1",), forbidden=("CREATE ROLE x",))


def test_a_client_with_its_own_lifetimes():
    spec = validate_client_spec("app-batch", client(token_ttl="5m", token_max_ttl="2h", secret_id_ttl="7d"),
                                {"reader": READER}, DAY)
    assert (spec.token_ttl, spec.token_max_ttl, spec.secret_id_ttl) == (300, 7200, 7 * DAY)


@pytest.mark.parametrize(
    "name, raw, field",
    [
        ("", client(), "clients."),
        ("*", client(), "clients.*"),
        ("..", client(), "clients..."),
        ("Reader", client(), "clients.Reader"),
        ("a" * 32, client(), "clients." + "a" * 32),
        ("x", client(role="nope"), "clients.x.role"),
        ("x", client(role=None), "clients.x.role"),
        ("x", client(token_ttl="2h", token_max_ttl="1h"), "clients.x.token_ttl"),
        ("x", client(token_max_ttl="2d"), "clients.x.token_max_ttl"),
        ("x", client(token_ttl="0s"), "clients.x.token_ttl"),
        ("x", client(secret_id_ttl="31d"), "clients.x.secret_id_ttl"),
        ("x", client(secret_id_ttl=0), "clients.x.secret_id_ttl"),
        ("x", client(allowed=[]), "clients.x.allowed"),
        ("x", client(allowed=None), "clients.x.allowed"),
        ("x", client(forbidden=[""]), "clients.x.forbidden"),
        ("x", client(forbidden="CREATE ROLE x"), "clients.x.forbidden"),
        ("x", client(creds_path="database/creds/app"), "clients.x.creds_path"),
        ("x", ["reader"], "clients.x"),
        # Kubernetes auth: both lists, each non-empty, plain names; a token that covers the lease.
        ("x", client(service_accounts=["app"]), "clients.x.namespaces"),
        ("x", client(namespaces=["team"]), "clients.x.service_accounts"),
        ("x", client(service_accounts=[], namespaces=["team"]), "clients.x.service_accounts"),
        ("x", client(service_accounts=["app"], namespaces=[]), "clients.x.namespaces"),
        ("x", client(service_accounts=["*"], namespaces=["team"]), "clients.x.service_accounts"),
        ("x", client(service_accounts=["app"], namespaces=["*"]), "clients.x.namespaces"),
        ("x", client(service_accounts=["app-*"], namespaces=["team"]), "clients.x.service_accounts"),
        ("x", client(service_accounts=["App"], namespaces=["team"]), "clients.x.service_accounts"),
        ("x", client(service_accounts="app", namespaces=["team"]), "clients.x.service_accounts"),
        ("x", client(service_accounts=["app"], namespaces=["team", "team"]), "clients.x.namespaces"),
        ("x", client(service_accounts=["app"], namespaces=["team"], token_max_ttl="30m"), "clients.x.token_max_ttl"),
    ],
)
def test_bad_clients_name_the_field(name, raw, field):
    with pytest.raises(SpecError) as error:
        validate_client_spec(name, raw, {"reader": READER}, DAY)
    assert error.value.field == field


def test_a_kubernetes_client_names_its_service_accounts_and_namespaces():
    reader = GrantSpec(name="reader", privileges=("SELECT",), schemas=("public",), max_ttl=3600)
    spec = validate_client_spec("team-app", client(service_accounts=["team-app"], namespaces=["team-a", "team-b"]),
                                {"reader": reader}, DAY)
    assert (spec.service_accounts, spec.namespaces, spec.kubernetes) == (("team-app",), ("team-a", "team-b"), True)
    # Its token must outlive the role's max_ttl (here equal: 1h), so a lease is never cut short by its token.
    assert spec.token_max_ttl == reader.max_ttl
    assert not validate_client_spec("plain", client(), {"reader": READER}, DAY).kubernetes


def test_two_clients_cannot_share_a_role():
    with pytest.raises(SpecError, match="already read by client 'a'") as error:
        validate_clients({"a": client(), "b": client()}, {"reader": READER, "app": APP}, DAY)
    assert error.value.field == "clients.b.role"


def test_clients_must_be_a_mapping():
    with pytest.raises(SpecError) as error:
        validate_clients(["a"], {"reader": READER}, DAY)
    assert error.value.field == "clients"


def test_a_grant_spec_crosses_to_a_provider_and_back_without_its_ttls():
    from components.grant_specs import GrantSpec, grant_spec_of_props, grant_spec_props

    spec = GrantSpec(name="app", privileges=("SELECT", "INSERT"), tables=("public.users",), default_ttl=60,
                     max_ttl=120)
    props = grant_spec_props(spec)
    assert props == {"role": "app", "privileges": ["SELECT", "INSERT"], "schemas": [], "tables": ["public.users"]}
    # Other keys of the provider's properties are left alone; TTLs are Vault's, not the database's.
    back = grant_spec_of_props({**props, "data_dir": "/d", "port": 5432.0})
    assert (back.name, back.privileges, back.schemas, back.tables) == (spec.name, spec.privileges, (), spec.tables)


def test_a_roles_connection_limit_caps_each_of_its_users_sessions():
    assert validate_grant_spec("app", valid(), max_ttl_cap=DAY).connection_limit == 10
    assert validate_grant_spec("app", valid(connection_limit=3), max_ttl_cap=DAY).connection_limit == 3
    for bad in (0, 101, "5", True):
        with pytest.raises(SpecError, match="from 1 to 100") as error:
            validate_grant_spec("app", valid(connection_limit=bad), max_ttl_cap=DAY)
        assert error.value.field == "roles.app.connection_limit"
    # CockroachDB has no per-user session cap: a limit there would be ignored, so it is refused.
    with pytest.raises(SpecError, match="CockroachDB cannot cap a user's sessions: remove it"):
        validate_grant_spec("app", valid(connection_limit=3), max_ttl_cap=DAY, dialect=DIALECTS["cockroachdb"])
