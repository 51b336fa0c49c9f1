"""The docker target's own engine (components/docker/daemon.py) with a real dockerd: started when none
answers, found again when one does, and only the one the stack started is ever stopped or removed."""

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from components.docker.daemon import DockerEngine, DockerEngineError, dockerd_binary


@pytest.fixture
def dockerd():
    try:
        return dockerd_binary()
    except DockerEngineError as error:
        pytest.skip(f"no dockerd binary: {error}")


def test_the_stacks_engine_starts_once_and_down_removes_it(tmp_path, dockerd):
    engine = DockerEngine(tmp_path / "docker")
    try:
        assert engine.ensure_running() is True and engine.answers()
        pid = engine.pid()
        assert pid is not None and "--bridge=none" in open(f"/proc/{pid}/cmdline").read().split("\0")
        # Answering already: found, not started again.
        assert DockerEngine(tmp_path / "docker").ensure_running() is False and engine.pid() == pid
        engine.docker("volume", "create", "kept")
        # Stopped (as a machine restart does): started again, with what it held.
        engine.stop()
        assert not engine.answers() and engine.pid() is None and not engine.exec_root.exists()
        assert engine.ensure_running() is True
        assert "kept" in engine.docker("volume", "ls", "--quiet").stdout.split()
    finally:
        engine.remove()
    assert not engine.answers() and engine.pid() is None
    assert not engine.data_dir.exists() and not engine.exec_root.exists()


def test_an_engine_the_stack_did_not_start_is_used_and_left_alone(tmp_path, dockerd):
    engine = DockerEngine(tmp_path / "docker")
    engine.data_dir.mkdir()
    # Its exec root holds containerd's sockets: short, under /run, as a socket's path must be.
    other_root, other_exec = tmp_path / "other-root", Path(tempfile.mkdtemp(prefix="dbc-other-", dir="/run"))
    log = tmp_path / "other.log"
    # Someone else's dockerd answers at the stack's socket.
    with log.open("wb") as output:
        other = subprocess.Popen([dockerd, "--data-root", str(other_root), "--exec-root", str(other_exec),
                                  "--pidfile", str(tmp_path / "other.pid"), "--host", engine.host, "--bridge=none",
                                  "--iptables=false", "--ip6tables=false"],
                                 stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not engine.answers():
            assert other.poll() is None and time.monotonic() < deadline, \
                f"the other dockerd did not start: {log.read_text()[-2000:]}"
            time.sleep(0.2)
        assert engine.ensure_running() is False and engine.pid() is None
        engine.stop()
        engine.remove()
        assert engine.answers() and other.poll() is None and other_root.exists()
    finally:
        other.terminate()
        other.wait(timeout=60)
        shutil.rmtree(other_exec, ignore_errors=True)


def test_a_docker_stack_without_its_engine_fails_at_preview_naming_it(tmp_path):
    """Nothing answers at the stack's socket (`pulumi preview` run by hand, not through make): the
    program refuses before any resource, naming the setting and the socket."""
    from pulumi import automation as auto

    from tests.automation import local_servers_config, root_program, stack_file_config, temporary_stack

    data_dir = tmp_path / "data"
    with temporary_stack(root_program(tmp_path), tmp_path, "docker") as stack:
        stack.set_all_config({**stack_file_config("docker"), **local_servers_config(
            data_dir, keys=("vault_port", "vault_cluster_port", "db_port"))})
        with pytest.raises(auto.CommandError) as error:
            stack.preview(on_output=lambda _: None)
        assert (f"config target: no Docker engine answers at unix://{data_dir}/docker/docker.sock: "
                "`make up` and `make preview` start the stack's own there") in str(error.value)
        assert not stack.export_stack().deployment.get("resources")
        assert not (data_dir / "docker").exists()
