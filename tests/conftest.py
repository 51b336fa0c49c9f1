"""Skips are counted and must have an allowed reason (tests/allowed_skips.txt): any other fails the run;
a data folder left in PostgreSQL's fallback root (components.servers.postgres.SYSTEM_DATA_ROOT) fails it too.

The tests run in three worker processes (pytest-xdist, pytest.ini): each test module is one unit of work,
and the modules that share one thing (the session's Kubernetes cluster, the Docker engine, the dev
platform of tests/integration/conftest.py) run one after another in the same worker. The units are
handed out longest first (LONGEST_FIRST), so that the run ends on short ones and no worker waits
long for the others. Figures the tests measure (the `figure` fixture) are printed at the end of the run,
since a worker's own output is not shown.

A test that skips because something it needs is missing has not passed; the
allow-list names what this project's machines cannot have, and nothing else.
"""

import re
from pathlib import Path

import pytest

from tests.support.processes import system_data_folders

ALLOWED = [re.compile(line) for line in (Path(__file__).parent / "allowed_skips.txt").read_text().splitlines()
           if line.strip() and not line.startswith("#")]
SKIPS: list[tuple[str, str]] = []
#: PostgreSQL data folders outside the checkout (a private clone's fallback) before the session: the
#: session must leave no new one behind.
SYSTEM_DATA_BEFORE: set[str] = set()
LEFT_BEHIND: list[str] = []
FIGURES: list[tuple[str, str]] = []
#: Seconds each unit of work (a group, or a module) took, setup, call and teardown: one worker runs
#: a unit from start to end, so the longest bounds the run's wall time (printed at the end).
UNIT_SECONDS: dict[str, float] = {}
#: Test modules that share one thing of the machine's, each group run in one worker.
SHARED = {
    "kubernetes-cluster": ("test_cluster", "test_prod_cluster", "test_team_app"),
    "docker-engine": ("test_docker_engine", "test_docker_stack", "test_stacks_and_kubernetes"),
    "dev-platform": ("test_drift", "test_static_to_dynamic", "test_team_program"),
}
#: The longest units of work, longest first (a group's modules together, ranked from the full runs'
#: slowest tests: the cluster's group the longest by far, then those of a few minutes). pytest-xdist
#: hands the units out in the order of their first test (pytest.ini: --no-loadscope-reorder; else it
#: sorts them by their number of tests, leaving the one-test modules of two minutes each to the end):
#: these go first, then the others in collection order (the unit tests, seconds each, last).
LONGEST_FIRST = (
    "kubernetes-cluster", "test_dev_stack", "docker-engine", "test_faults", "dev-platform", "test_bad_input",
    "test_vault_cluster", "test_policy_gate", "test_make_up_anywhere", "test_expired_users", "test_external_target",
    "test_root_rotation", "test_cert_renewal", "test_backup", "test_upgrade", "test_secrets_stay_secret",
)


def in_worker(session) -> bool:
    return hasattr(session.config, "workerinput")


def group_of(item) -> str:
    return group_of_module(item.module.__name__.rsplit(".", 1)[-1])


def group_of_module(module: str) -> str:
    return next((name for name, modules in SHARED.items() if module in modules), module)


def rank(group: str) -> int:
    return LONGEST_FIRST.index(group) if group in LONGEST_FIRST else len(LONGEST_FIRST)


@pytest.hookimpl(tryfirst=True)  # before xdist's worker reads the groups
def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.xdist_group(group_of(item)))
    # A stable sort: each module's tests, and a group's modules, keep their order.
    items.sort(key=lambda item: rank(group_of(item)))


@pytest.fixture
def figure(record_property):
    """Records a line of measured figures, printed in the run's summary."""
    return lambda line: record_property("figure", line)


def pytest_sessionstart(session):
    if not in_worker(session):
        SYSTEM_DATA_BEFORE.update(system_data_folders())


def skip_reason(report) -> str:
    longrepr = report.longrepr
    return longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)


def record(report) -> None:
    if report.skipped:
        SKIPS.append((report.nodeid, skip_reason(report)))


def pytest_collectreport(report):
    record(report)


def pytest_runtest_logreport(report):
    unit = group_of_module(report.nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py"))
    UNIT_SECONDS[unit] = UNIT_SECONDS.get(unit, 0.0) + report.duration
    if report.when in ("setup", "call"):
        record(report)
    if report.when == "teardown":
        FIGURES.extend((report.nodeid, value) for key, value in report.user_properties if key == "figure")


def disallowed() -> list[tuple[str, str]]:
    return [(node, reason) for node, reason in SKIPS if not any(p.search(reason) for p in ALLOWED)]


def pytest_sessionfinish(session):
    if in_worker(session):
        return  # the other worker may still run a server
    LEFT_BEHIND.extend(sorted(system_data_folders() - SYSTEM_DATA_BEFORE))
    if (disallowed() or LEFT_BEHIND) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if UNIT_SECONDS:
        terminalreporter.section("units of work, longest first")
        longest = sorted(UNIT_SECONDS.items(), key=lambda item: -item[1])[:12]
        terminalreporter.write_line(", ".join(f"{unit} {seconds:.0f} s" for unit, seconds in longest))
    if FIGURES:
        terminalreporter.section("figures")
        for nodeid, line in FIGURES:
            terminalreporter.write_line(f"{nodeid.split('::')[-1].split('@')[0]}: {line}")
    if LEFT_BEHIND:
        terminalreporter.section("left behind")
        terminalreporter.write_line(f"the tests left PostgreSQL data folders in the fallback root: "
                                    f"{', '.join(LEFT_BEHIND)}")
    if not SKIPS:
        return
    bad = disallowed()
    terminalreporter.section("skips")
    terminalreporter.write_line(f"{len(SKIPS)} skipped: {len(SKIPS) - len(bad)} for an allowed reason, "
                                f"{len(bad)} not (tests/allowed_skips.txt)")
    for node, reason in bad:
        terminalreporter.write_line(f"NOT ALLOWED: {node}: {reason}")
