"""The docker stack for real: the root program on the stack's own dockerd, with images built here.

Up, the post-deploy checks pass; killed containers come back on the next `up` with their data; a
restarted engine brings the containers back sealed, and `up` unseals; `make down` (toolchain/down.py)
revokes, proves no dynamic user is left, destroys, and removes the engine it started with every
image, container and volume in it.
"""

import shutil
import uuid
from pathlib import Path

import pytest
from pulumi import automation as auto

from components.docker.daemon import DockerEngineError, dockerd_binary
from stacks import config as stack_settings
from stacks import docker_target
from tests.automation import local_servers_config, root_program, stack_file_config, temporary_stack
from tests.support.dev_stack import DevStack, quiet
from toolchain import down
from toolchain.env import ROOT


def docker_ids(engine, *what: str) -> list[str]:
    return engine.docker(*what, "--quiet").stdout.split()


def test_docker_stack_up_checks_restarts_and_down_leaves_nothing(tmp_path, capfd):
    data_dir = ROOT / ".data" / "tests" / f"docker-{uuid.uuid4().hex[:8]}"
    files = tmp_path / "files"
    files.mkdir()
    with temporary_stack(root_program(tmp_path), tmp_path, "docker") as stack:
        stack.set_all_config({**stack_file_config("docker"), **local_servers_config(
            data_dir, keys=("vault_port", "vault_cluster_port", "db_port"))})
        config = stack_settings.of_stack(stack, ROOT)
        engine = docker_target.engine(config)
        try:
            dockerd_binary()
            assert engine.ensure_running() is True
        except DockerEngineError as error:
            pytest.skip(f"dockerd cannot start here: {error}")
        try:
            running = DevStack(stack, {}, config, data_dir, files)
            running._read(stack.up(on_output=quiet).outputs)
            assert running.outputs["checks"]["passed"], running.outputs["checks"]
            assert running.outputs["target"] == "docker"
            containers = docker_ids(engine, "ps")
            assert len(containers) == 2 and len(docker_ids(engine, "volume", "ls")) == 3
            assert sorted(engine.docker("images", "--format", "{{.Repository}}").stdout.split()) == [
                "dbcreds-openbao", "dbcreds-postgres"]

            # A row written with a dynamic credential survives what follows.
            creds = running.login("app").read(running.outputs["clients"]["app"]["creds_path"])["data"]
            with running.connect(creds["username"], creds["password"]) as conn:
                conn.execute("INSERT INTO public.users (name, email) VALUES ('kept', 'kept@example.com')")

            # Both containers killed: the next up (refresh first, as make up does) makes them again on
            # the same volumes, unseals Vault with the keys from state, and the checks pass.
            engine.docker("kill", *containers)
            stack.refresh(on_output=quiet)
            running._read(stack.up(on_output=quiet).outputs)
            assert running.outputs["checks"]["passed"], running.outputs["checks"]
            assert not set(docker_ids(engine, "ps")) & set(containers)

            # The engine restarted (as after a machine restart): the containers come back by their
            # restart policy, Vault sealed; up unseals it.
            engine.stop()
            assert not engine.answers()
            assert engine.ensure_running() is True
            assert len(docker_ids(engine, "ps")) == 2
            assert running.admin().sys.is_sealed()
            running._read(stack.up(on_output=quiet).outputs)
            assert running.outputs["checks"]["passed"], running.outputs["checks"]
            creds = running.login("reader").read(running.outputs["clients"]["reader"]["creds_path"])["data"]
            with running.connect(creds["username"], creds["password"]) as conn:
                assert conn.execute("SELECT count(*) FROM public.users WHERE email = 'kept@example.com'"
                                    ).fetchone() == (1,)

            capfd.readouterr()
            down.down(stack.name, stack.workspace.env_vars, Path(stack.workspace.work_dir))
            err = capfd.readouterr().err
            assert "no lease and no dynamic database user left" in err
            assert "removing the stack's Docker engine" in err
            assert docker_target.ours_left(config) == [] and not engine.answers()
        finally:
            if engine.pid() is not None:
                if stack.name in {s.name for s in stack.workspace.list_stacks()}:
                    stack.destroy(on_output=quiet)
                engine.remove()
            shutil.rmtree(data_dir, ignore_errors=True)
