"""`make rotate-audit`: which moved logs go, where a log is moved and how, the docker target's audit
volume found from `docker inspect`, the targets that refuse, and KEEP read before anything is touched."""

import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from components.servers.openbao import AuditRotationError, moved_audit_log, rotate_audit_file, rotated_beyond
from stacks import docker_target, external_target, kubernetes_target
from toolchain.rotate_audit import RotateError, parse_keep

MOVED = [Path(f"/a/audit.log.2026120{d}T000000.000000Z") for d in (3, 1, 2)]


def test_all_but_the_newest_kept_go_oldest_first():
    assert rotated_beyond(MOVED, 2) == [Path("/a/audit.log.20261201T000000.000000Z")]
    assert rotated_beyond(MOVED, 5) == []


def test_a_log_is_moved_beside_itself_under_its_utc_time():
    at = datetime.datetime(2026, 12, 6, 21, 30, 5, 7, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert moved_audit_log(Path("/v/audit.log"), at) == Path("/v/audit.log.20261206T193005.000007Z")


def test_the_log_is_moved_the_server_reopens_and_the_oldest_beyond_keep_go(tmp_path):
    log = tmp_path / "audit.log"
    for day in (1, 2):
        (tmp_path / f"audit.log.2026120{day}T000000.000000Z").write_text("old\n")
    log.write_text("line\n")
    reopened = []

    def reopen():  # As OpenBao on SIGHUP: a new, empty file where the log was.
        reopened.append(1)
        log.touch()

    at = datetime.datetime(2026, 12, 3, tzinfo=datetime.timezone.utc)
    moved = rotate_audit_file(log, reopen, "the server", 2, at)
    assert moved == tmp_path / "audit.log.20261203T000000.000000Z" and moved.read_text() == "line\n"
    assert reopened == [1] and log.read_text() == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "audit.log", "audit.log.20261202T000000.000000Z", "audit.log.20261203T000000.000000Z"]


def test_an_empty_log_is_not_moved_and_the_server_not_signalled(tmp_path):
    (tmp_path / "audit.log").touch()
    assert rotate_audit_file(tmp_path / "audit.log", lambda: pytest.fail("signalled"), "the server", 1) is None
    assert rotate_audit_file(tmp_path / "gone.log", lambda: pytest.fail("signalled"), "the server", 1) is None


def test_a_server_that_does_not_reopen_is_named_with_where_its_lines_go(tmp_path, monkeypatch):
    monkeypatch.setattr("components.servers.openbao.STARTUP_SECONDS", 0.3)
    (tmp_path / "audit.log").write_text("line\n")
    with pytest.raises(AuditRotationError, match=r"^the server did not reopen .*audit\.log after SIGHUP .*"
                                                 r"\(its lines go on into .*audit\.log\.\d{8}T"):
        rotate_audit_file(tmp_path / "audit.log", lambda: None, "the server", 1)


def test_the_docker_target_finds_the_audit_volume_of_the_container_that_holds_one():
    inspected = [
        {"Name": "/dbcreds-docker-vault-openbao", "Mounts": [
            {"Type": "volume", "Name": "dbcreds-docker-vault-raft", "Source": "/d/root/volumes/r/_data",
             "Destination": "/openbao/raft"},
            {"Type": "volume", "Name": "dbcreds-docker-vault-audit", "Source": "/d/root/volumes/a/_data",
             "Destination": "/openbao/audit"}]},
        {"Name": "/dbcreds-docker-db-postgres", "Mounts": [
            {"Type": "volume", "Source": "/d/root/volumes/p/_data", "Destination": "/var/lib/postgresql/data"}]},
        {"Name": "/a-bind-mount", "Mounts": [{"Type": "bind", "Source": "/tmp/x", "Destination": "/openbao/audit"}]},
        {"Name": "/no-mounts", "Mounts": None},
    ]
    assert docker_target.audit_folders(inspected, "/openbao/audit") == {
        "dbcreds-docker-vault-openbao": Path("/d/root/volumes/a/_data")}


def test_the_kubernetes_target_rotates_in_each_pods_sidecar(monkeypatch):
    calls = []
    moved = "/openbao/audit/audit.log.20261206T000000.000000Z"

    def kubectl(_config, *args, **_kwargs):
        calls.append(args)
        return SimpleNamespace(stdout=f"{moved}\n" if args[3] == "vault-0" else "")

    monkeypatch.setattr(kubernetes_target, "kubectl", kubectl)
    config = SimpleNamespace(target=SimpleNamespace(namespace="ns"), vault=SimpleNamespace(nodes=3))
    # One moved file per pod that had lines (a standby's log may be empty).
    assert kubernetes_target.rotate_audit(config, 5) == [f"vault-0:{moved}"]
    assert sorted(calls) == [("--namespace", "ns", "exec", f"vault-{i}", "--container", "audit-rotator", "--",
                              "/usr/bin/python3", "/opt/rotator/audit_rotator.py", "now", "5") for i in range(3)]


def test_the_external_target_refuses_naming_the_target_and_why():
    config = SimpleNamespace(target=SimpleNamespace(namespace="dbcreds-k8s", vault_addr="https://vault.example:8200"))
    with pytest.raises(AuditRotationError, match=r"^the external target's Vault \(https://vault.example:8200\) is "
                                                 "its operator's"):
        external_target.rotate_audit(config, 14)


@pytest.mark.parametrize("raw", ["0", "-1", "x", "1.5"])
def test_a_keep_that_is_no_count_is_named(raw):
    with pytest.raises(RotateError, match=f"KEEP={raw!r}"):
        parse_keep(raw)


def test_keep_is_a_count():
    assert parse_keep("7") == 7
