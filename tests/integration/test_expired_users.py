"""Dynamic users no lease holds are dropped by the next `up` once past their VALID UNTIL
(stacks/dynamic_users.py), through the root program on a dev stack.

OpenBao is killed (`kill -9`) while 20 workers issue credentials: the plugin
may have made a user whose lease was never written, which Vault will never
revoke. One such user is also made on purpose, as the plugin would (the
stack's creation SQL, VALID UNTIL a few seconds ahead, no lease), so the path
runs whatever the kill left. Past their VALID UNTIL and the grace, an `up`
drops exactly those, names them, and leaves users with live leases alone: one
whose lease was renewed past its first end, and one issued after the restart.
"""

import datetime
import json
import os
import secrets
import signal
import string
import threading
import time

import pytest

from components.postgres_sql import (
    EXPIRED_GRACE_SECONDS,
    creation_statements,
    expired_dynamic_users_query,
    role_of_username,
)
from stacks import local_target as local
from tests.automation import make_down, updates_only
from tests.support.dev_stack import dev_stack

#: The reader role's leases end after 40 s here (at most three minutes with renewals), so its users
#: expire within the test; the app role keeps dev's hour. 40 s: the workers' leases must outlive the
#: kill and the up that restarts OpenBao, until they are listed (11.6 s after the first issue, measured
#: on a loaded machine: the test's figures print it).
READER_TTL = 40
ROLES = {
    "reader": {"privileges": ["SELECT"], "schemas": ["public"], "default_ttl": f"{READER_TTL}s", "max_ttl": "180s"},
    "app": {"privileges": ["SELECT", "INSERT", "UPDATE", "DELETE"], "tables": ["public.users", "public.orders"],
            "default_ttl": "1h", "max_ttl": "8h", "connection_limit": 5},
}
WORKERS = 20


def readers(running) -> set[str]:
    """The reader role's dynamic users in the database (asked as its superuser)."""
    return {u for u in local.dynamic_users(running.config) if role_of_username(u) == "reader"}


def valid_until(running, user: str) -> datetime.datetime:
    with local.superuser(running.config) as conn:
        return conn.execute("SELECT rolvaliduntil FROM pg_roles WHERE rolname = %s", (user,)).fetchone()[0]


def reader_leases(running) -> list[str]:
    listed = running.admin().list("sys/leases/lookup/database/creds/reader/")
    return listed["data"]["keys"] if listed else []


def issue_until_killed(running, issued: list[str], stop: threading.Event) -> None:
    """A worker: logs in as the reader client, then issues credentials until Vault stops answering."""
    vault = running.login("reader")
    path = running.outputs["clients"]["reader"]["creds_path"]
    while not stop.is_set():
        try:
            issued.append(vault.read(path)["data"]["username"])
        except Exception:  # noqa: BLE001 - Vault killed: any failure ends the worker
            return


def orphan_as_the_plugin_would(running, seconds: int) -> str:
    """A reader user made with the stack's creation SQL, named as the template names them, VALID UNTIL
    `seconds` ahead, and no lease: what the plugin leaves when Vault dies before writing the lease."""
    name = f"v_reader_{''.join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(20))}" \
           f"_{int(time.time())}"
    until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    group = running.outputs["db_group_roles"]["reader"]
    with local.superuser(running.config) as conn:
        for statement in creation_statements(group):
            conn.execute(statement.replace("{{name}}", name).replace("{{password}}", secrets.token_urlsafe(24))
                         .replace("{{expiration}}", until.strftime("%Y-%m-%d %H:%M:%S%z")))
    return name


def wait_for(what: str, done, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f} s: {what}")
        time.sleep(1)


def test_users_without_a_lease_are_dropped_by_the_next_up_once_expired(tmp_path, capfd):
    with dev_stack(tmp_path, "expired", roles=json.dumps(ROLES)) as running:
        assert running.outputs["expired_users_dropped"] == []
        creds_path = running.outputs["clients"]["reader"]["creds_path"]

        # A lease renewed past its first end: renewal moves its user's VALID UNTIL (the plugin's default
        # renew SQL), so the reaper must leave it be after that first end.
        renewed = running.login("reader").read(creds_path)
        first_end = valid_until(running, renewed["data"]["username"])
        running.admin().sys.renew_lease(lease_id=renewed["lease_id"], increment=180)
        assert valid_until(running, renewed["data"]["username"]) > first_end + datetime.timedelta(seconds=60)

        # 20 workers issue; OpenBao is killed under them.
        issued: list[str] = []
        stop = threading.Event()
        workers = [threading.Thread(target=issue_until_killed, args=(running, issued, stop)) for _ in range(WORKERS)]
        first_issue = time.monotonic()
        for worker in workers:
            worker.start()
        wait_for("the workers issue 100 credentials", lambda: len(issued) >= 100, 60)
        os.kill(local.vault_server(running.config).pid(), signal.SIGKILL)
        stop.set()
        for worker in workers:
            worker.join(60)
        made = readers(running) - {renewed["data"]["username"]}
        assert set(issued) <= made
        planted = orphan_as_the_plugin_would(running, seconds=3)

        # The next up restarts and unseals OpenBao; nothing is past its VALID UNTIL and the grace yet.
        restart = time.monotonic()
        running.up()
        restart = time.monotonic() - restart
        assert running.outputs["expired_users_dropped"] == []
        assert planted in readers(running)
        # Users the plugin made whose lease Vault never wrote (the workers' leases, READER_TTL long, all listed).
        listed = reader_leases(running)
        assert time.monotonic() - first_issue < READER_TTL, "the workers' first leases ended before they were listed"
        lost = len(made) - (len(listed) - 1)
        figures = (f"{len(issued)} credentials answered, {len(made)} reader users made before the kill, "
                   f"{lost} of them with no lease; the up that restarted OpenBao took {restart:.1f} s, "
                   f"{time.monotonic() - first_issue:.1f} s after the workers' first issue")
        assert lost >= 0
        # A lease issued after the restart, of the app role (an hour).
        live = running.login("app").read(running.outputs["clients"]["app"]["creds_path"])["data"]

        # Vault revokes every lease that ends (it runs now); what is left of the reader's users is the
        # renewed one and those no lease holds.
        wait_for("Vault revokes the workers' ended leases",
                 lambda: reader_leases(running) == [renewed["lease_id"].rsplit("/", 1)[1]], 120)
        orphans = readers(running) - {renewed["data"]["username"]}
        assert planted in orphans and len(orphans) == lost + 1
        # Past their VALID UNTIL and the grace, by the database's clock (the query the reaper runs).
        wait_for("the orphans are past VALID UNTIL and the grace",
                 lambda: orphans <= set(local.dynamic_users(running.config, query=expired_dynamic_users_query())),
                 READER_TTL + EXPIRED_GRACE_SECONDS + 30)

        result = running.up()
        dropped = running.outputs["expired_users_dropped"]
        figures += f"; expired_users_dropped: {dropped}"
        assert sorted(dropped) == sorted(orphans)
        assert result.summary.resource_changes == updates_only(running.stack, 1)  # the checks and the reaper
        assert running.outputs["checks"]["passed"]
        assert readers(running) == {renewed["data"]["username"]}
        # Users with live leases are untouched: each still logs in.
        for user, password in ((renewed["data"]["username"], renewed["data"]["password"]),
                               (live["username"], live["password"])):
            with running.connect(user, password) as conn:
                assert conn.execute("SELECT current_user").fetchone()[0] == user

        # make down: every lease revoked, no dynamic user left for it to drop.
        err = make_down(running.stack, capfd)
        assert "no lease and no dynamic database user left" in err
        assert "that no lease held" not in err
        assert local.running_servers(running.config) == []
        print(figures)  # after make_down's capture (`-rP` shows it)

