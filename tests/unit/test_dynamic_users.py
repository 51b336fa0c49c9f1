"""The reaper of expired dynamic users (stacks/dynamic_users.py): what it drops and names, with the
database replaced by a list; and where the root program puts it. tests/integration/test_expired_users.py
runs it for real."""

import pytest

from components.postgres_sql import expired_dynamic_users_query
from stacks import dynamic_users
from stacks.dynamic_users import reap
from tests.unit.graph import registered, unwrap
from tests.unit.test_root_program import run_dev_program
from toolchain.drift import EVERY_UPDATE

EXPIRED = ["v_reader_aaaaaaaaaaaaaaaaaaaa_1700000000", "v_app_bbbbbbbbbbbbbbbbbbbb_1700000001"]
REAPER = "pulumi-python:dynamic/dbcreds:ExpiredUsersReaped"


class Database:
    """Expired users, and a drop that fails its first `fail` calls after dropping `gone_anyway` (as Vault's
    concurrent revocation does: the user is gone, the statement failed)."""

    def __init__(self, expired: list[str], fail: int = 0, gone_anyway: int = 0):
        self.expired, self.fail, self.gone_anyway, self.queries, self.drops = list(expired), fail, gone_anyway, [], []

    def list_users(self, query: str) -> list[str]:
        self.queries.append(query)
        return sorted(self.expired)

    def drop(self, users: list[str]) -> None:
        self.drops.append(list(users))
        if self.fail:
            self.fail -= 1
            for user in users[:self.gone_anyway]:
                self.expired.remove(user)
            raise RuntimeError("tuple concurrently deleted")
        for user in users:
            self.expired.remove(user)


def test_nothing_expired_drops_nothing_and_asks_once():
    database = Database([])
    assert reap(database.list_users, database.drop) == []
    assert database.queries == [expired_dynamic_users_query()] and database.drops == []


def test_expired_users_are_dropped_and_named():
    database = Database(EXPIRED)
    assert reap(database.list_users, database.drop) == sorted(EXPIRED)
    assert database.drops == [sorted(EXPIRED)] and database.expired == []


def test_a_drop_that_races_vaults_own_revocation_is_tried_again_and_every_user_named():
    database = Database(EXPIRED, fail=1, gone_anyway=1)
    assert reap(database.list_users, database.drop) == sorted(EXPIRED)
    # The second try drops only what the first left.
    assert database.drops == [sorted(EXPIRED), sorted(EXPIRED)[1:]] and database.expired == []


def test_users_left_after_every_try_fail_naming_them_and_the_error():
    database = Database(EXPIRED, fail=dynamic_users.ATTEMPTS)
    with pytest.raises(RuntimeError, match=r"2 dynamic user\(s\) past their VALID UNTIL are left after 3 tries.*"
                                           r"v_app_b.*tuple concurrently deleted"):
        reap(database.list_users, database.drop)


def test_the_root_program_reaps_before_the_checks_and_drift_does_not_report_it(monitor, monkeypatch):
    run_dev_program(monkeypatch)
    (reaper,) = registered(monitor, REAPER).values()
    assert (reaper["stack"], reaper["db_location"]) == ("unit", "")
    # The stack's settings travel as a secret (some are), whole, as Pulumi holds them (text).
    assert unwrap(reaper["settings"]) != reaper["settings"]
    settings = unwrap(reaper["settings"])
    assert settings["data_dir"] == ".data/dev" and '"reader"' in settings["roles"]
    assert REAPER in EVERY_UPDATE


def test_the_docker_stack_reaps_in_its_container(monitor, monkeypatch):
    from stacks import preflight

    # The graph only: no engine is started under the mocks.
    monkeypatch.setattr(preflight, "check_machine", lambda _config: None)
    run_dev_program(monkeypatch, "docker")
    (reaper,) = registered(monitor, REAPER).values()
    # The container's name (the docker target's DATABASE_LOCATION).
    assert reaper["db_location"]
