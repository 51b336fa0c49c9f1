"""The kubernetes target's audit log sidecar (components/kubernetes/audit_rotator.py), without a pod:
OpenBao found in a process table made up here, a rotation that loses no line, and the pod template
that carries it."""

import os

import pytest

from components.kubernetes import audit_rotator as r
from components.kubernetes import manifests as m


def fake_process(proc, pid: int, argv: list[str]) -> None:
    (proc / str(pid)).mkdir()
    (proc / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")


def test_openbao_is_found_by_its_command_line_in_the_shared_process_namespace(tmp_path):
    fake_process(tmp_path, 1, ["/pause"])
    fake_process(tmp_path, 7, ["/usr/bin/python3", "/opt/rotator/audit_rotator.py", "watch", "1", "2"])
    fake_process(tmp_path, 12, ["/bin/bao", "server", "-config=/openbao/config/config.hcl"])
    (tmp_path / "self").mkdir()
    assert r.bao_pid(tmp_path) == 12
    os.remove(tmp_path / "12" / "cmdline")
    with pytest.raises(r.RotationError, match="shareProcessNamespace"):
        r.bao_pid(tmp_path)


def test_a_rotation_moves_the_log_aside_has_it_reopened_and_keeps_the_newest(tmp_path):
    log = tmp_path / "audit.log"
    writer = open(log, "a")
    writer.write("line 1\n")
    writer.flush()
    reopened = []

    def reopen():
        # OpenBao on SIGHUP: a line still in flight lands in the moved file, the next in a new one.
        writer.write("line 2\n")
        writer.close()
        reopened.append(open(log, "a"))

    moved = r.rotate(log, keep=2, reopen=reopen)
    reopened[0].write("line 3\n")
    reopened[0].close()
    assert moved.name.startswith("audit.log.") and moved.read_text() == "line 1\nline 2\n"
    assert log.read_text() == "line 3\n"
    # Twice more: the two newest moved logs are kept, the lock file is no log.
    for _ in range(2):
        r.rotate(log, keep=2, reopen=lambda: log.write_text(""))
        log.write_text("more\n")
    assert len(list(tmp_path.glob("audit.log.*"))) == 2 and moved not in list(tmp_path.glob("audit.log.*"))


def test_an_empty_log_is_not_moved(tmp_path):
    (tmp_path / "audit.log").write_text("")
    assert r.rotate(tmp_path / "audit.log", keep=1, reopen=lambda: pytest.fail("signalled")) is None
    assert r.rotate(tmp_path / "gone.log", keep=1, reopen=lambda: pytest.fail("signalled")) is None


def test_the_pods_share_their_process_namespace_with_the_sidecar_which_shares_the_audit_volume():
    rotator = {"image": "dbcreds-python:k", "pull": "Never", "digest": "abc"}
    template = m.openbao_statefulset("vault", "ns", "img", "Never", 3, "1Gi", None, "vault-config", "t", "s",
                                     rotator=rotator)["template"]
    spec = template["spec"]
    openbao, sidecar = spec["containers"]
    assert spec["shareProcessNamespace"] is True and openbao["name"] == "openbao"
    assert sidecar["name"] == m.ROTATOR_CONTAINER and sidecar["image"] == "dbcreds-python:k"
    assert {v["name"]: v["mountPath"] for v in sidecar["volumeMounts"]} == {
        "audit": "/openbao/audit", "rotator": m.ROTATOR_DIR}
    assert sidecar["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    rotator_volume, = [v for v in spec["volumes"] if v["name"] == "rotator"]
    assert rotator_volume["configMap"] == {"name": "vault-config",
                                           "items": [{"key": m.ROTATOR_SCRIPT, "path": m.ROTATOR_SCRIPT}]}
    # A new script is a new template (rolled out), as the digest it carries says.
    assert template["metadata"]["annotations"] == {"dbcreds/audit-rotator": "abc"}
    plain = m.openbao_statefulset("vault", "ns", "img", "Never", 3, "1Gi", None, "c", "t", "s")["template"]
    assert "shareProcessNamespace" not in plain["spec"] and len(plain["spec"]["containers"]) == 1
