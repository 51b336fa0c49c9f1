"""Grant spec validation: TTLs, privileges, names; every error names its field."""

import pytest

from components.grants import GrantSpec, SpecError, parse_ttl, validate_grant_spec

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
        validate_grant_spec("app", valid(privileges=[privilege]), max_ttl_cap=DAY, dialect=dialect)
    assert error.value.field == "roles.app.privileges"


@pytest.mark.parametrize("dialect", ["postgresql", "cockroachdb"])
def test_both_dialects_take_the_four_table_privileges(dialect):
    spec = validate_grant_spec("app", valid(privileges=["SELECT", "INSERT", "UPDATE", "DELETE"]),
                               max_ttl_cap=DAY, dialect=dialect)
    assert spec.privileges == ("SELECT", "INSERT", "UPDATE", "DELETE")
