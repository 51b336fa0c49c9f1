"""The root credential (the admin Vault connects as) rotates on a schedule, through the root program: a
dev stack whose root_rotation_period is a minute. Its first `up` rotates root once and the checks'
report says how old it is; once the minute has passed, a preview replaces the root Rotation and the
rotate-root endpoint (and updates the checks) and nothing else, and the `up` writes rotate-root again:
the admin's password hash in PostgreSQL changes, Vault still issues working credentials, the report's
root age starts again.
"""

import time

import pytest
from pulumi import automation as auto

from stacks import local_target as local
from tests.automation import assert_only_the_checks_change, reapers, updates_only
from tests.support.dev_stack import dev_stack, quiet

PERIOD = 60
ROTATION, ENDPOINT = "engine-root-rotation", "engine-rotate-root"


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    with dev_stack(tmp_path_factory.mktemp("root"), "root", root_rotation_period="1m") as stack:
        yield stack


def admin_password_hash(running) -> str:
    """The SCRAM verifier PostgreSQL keeps for Vault's admin, read as the superuser (Unix socket)."""
    with local.superuser(running.config) as conn:
        return conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s",
                            (running.config.database.admin,)).fetchone()[0]


def rotation_made_at(running) -> int:
    """When the root Rotation was made (Unix seconds), from the stack's state."""
    (rotation,) = [r for r in running.stack.export_stack().deployment["resources"]
                   if r["urn"].endswith(f"::{ROTATION}")]
    return int(rotation["outputs"]["created_at"])


def changed_steps(stack: auto.Stack) -> dict[str, set[str]]:
    """Each resource a preview would change, by name, with its steps' operations."""
    ops: dict[str, set[str]] = {}

    def event(e):
        if e.resource_pre_event and e.resource_pre_event.metadata.op != auto.OpType.SAME:
            ops.setdefault(e.resource_pre_event.metadata.urn.rsplit("::", 1)[1], set()).add(
                e.resource_pre_event.metadata.op.value)
    stack.preview(on_event=event, on_output=quiet)
    return ops


def test_the_report_gives_the_root_credentials_age_and_each_static_roles_last_rotation(running):
    report = running.outputs["checks"]
    assert report["passed"]
    assert 0 <= report["rotations"]["root_age_seconds"] < PERIOD
    static = report["rotations"]["static_roles"]["svc_reporting"]
    # What Vault itself says, read with the admin token.
    assert static["last_vault_rotation"] == running.admin().read("database/static-roles/svc_reporting")["data"][
        "last_vault_rotation"]
    assert 0 <= static["age_seconds"] < 24 * 3600


def test_the_first_up_after_the_period_rotates_root_and_nothing_else(running):
    before = admin_password_hash(running)
    time.sleep(max(0.0, rotation_made_at(running) + PERIOD + 1 - time.time()))
    # The preview names the schedule and the endpoint replaced; besides them only what every update
    # changes (the checks, the expired users' reaper).
    replaced = {"create-replacement", "replace", "delete-replaced"}
    every_up = {"checks": {"update"}, **({"expired-users": {"update"}} if reapers(running.stack) else {})}
    # Each team's connection (dev has one) is rotated on the same schedule.
    teams = [name for team in running.config.teams
             for name in (f"team-{team.name}-root-rotation", f"team-{team.name}-rotate-root")]
    assert teams, "dev's config names a team"
    assert changed_steps(running.stack) == {ROTATION: replaced, ENDPOINT: replaced,
                                            **{name: replaced for name in teams}, **every_up}
    updates = updates_only(running.stack, 1)
    started = time.time()
    result = running.up()
    rotated = 2 + len(teams)
    assert result.summary.resource_changes == {"replace": rotated, "update": updates["update"],
                                               "same": updates["same"] - rotated}
    # Vault wrote rotate-root through its connection: the admin has a new password.
    assert admin_password_hash(running) != before
    # Vault still reaches the database with it: each client's new credentials log in and work.
    for client in ("reader", "app"):
        with running.connect_as(client) as conn:
            # A seeded row, read with the new credentials (reader and app may both select users).
            assert conn.execute("SELECT name FROM public.users WHERE email = 'ada@example.com'").fetchone() == (
                "Ada Lovelace",)
    report = running.outputs["checks"]
    assert report["passed"]
    assert 0 <= report["rotations"]["root_age_seconds"] <= time.time() - started
    # Converged: the next preview changes the checks alone.
    assert_only_the_checks_change(running.stack)
