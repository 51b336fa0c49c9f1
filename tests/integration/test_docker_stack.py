"""The docker stack for real: the root program on the stack's own dockerd, with images built here.

Up, the post-deploy checks pass; killed containers come back on the next `up` with their data; a
restarted engine brings the containers back sealed, and `up` unseals; `make down` (toolchain/down.py)
revokes, proves no dynamic user is left, destroys, and removes the engine it started with every
image, container and volume in it. Skips only where the machine has no dockerd.
"""

import uuid

import pytest

from components.docker.daemon import DockerEngineError, dockerd_binary
from stacks import config as stack_settings
from stacks import docker_target
from tests.automation import local_servers_config, make_down, root_program, stack_file_config, temporary_stack
from tests.support.dev_stack import DevStack, quiet
from toolchain.up import keepers, servers_down
from toolchain.env import ROOT
from tests.support.processes import remove_data_dir


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
        except DockerEngineError as error:
            # Only the machine's lack may skip: no dockerd to run. The stack's own engine failing to
            # start where dockerd exists is the product's failure, and fails the test.
            pytest.skip(f"no dockerd binary: {error}")
        try:
            assert engine.ensure_running() is True
            running = DevStack(stack, {}, config, data_dir, files)
            running._read(stack.up(on_output=quiet).outputs)
            assert running.outputs["checks"]["passed"], running.outputs["checks"]
            assert running.outputs["target"] == "docker"
            containers = docker_ids(engine, "ps")
            assert len(containers) == 2 and len(docker_ids(engine, "volume", "ls")) == 3
            assert sorted(engine.docker("images", "--format", "{{.Repository}}").stdout.split()) == [
                "dbcreds-openbao", "dbcreds-postgres"]

            # A row written with a dynamic credential survives what follows.
            running.write_kept_row()

            # Both containers killed: as make up does when a server does not answer, an up of the keepers
            # starts them (Vault unsealed with the keys from state), then an up with refresh; the checks pass.
            engine.docker("kill", *containers)
            assert len(servers_down(running.outputs)) == 2
            keeper_urns = keepers(stack.export_stack().deployment["resources"])
            assert sorted(urn.rsplit("::", 1)[1] for urn in keeper_urns) == ["db-running", "vault-running"]
            stack.up(on_output=quiet, target=keeper_urns)
            running._read(stack.up(on_output=quiet, refresh=True).outputs)
            assert running.outputs["checks"]["passed"], running.outputs["checks"]
            assert sorted(docker_ids(engine, "ps")) == sorted(containers)

            # A container removed by hand: a refresh finds it gone, and up makes it again on its volume.
            engine.docker("rm", "--force", running.outputs["db_container"])
            running._read(stack.up(on_output=quiet, refresh=True).outputs)
            assert running.outputs["checks"]["passed"], running.outputs["checks"]

            # The engine restarted (as after a machine restart): the containers come back by their
            # restart policy, Vault sealed; up unseals it.
            engine.stop()
            assert not engine.answers()
            assert engine.ensure_running() is True
            assert len(docker_ids(engine, "ps")) == 2
            assert running.sealed_once_it_answers()
            running._read(stack.up(on_output=quiet).outputs)
            assert running.outputs["checks"]["passed"], running.outputs["checks"]
            assert running.kept_rows() == 1

            err = make_down(stack, capfd)
            assert "no lease and no dynamic database user left" in err
            assert "removing the stack's Docker engine" in err
            assert docker_target.ours_left(config) == [] and not engine.answers()
        finally:
            try:
                if engine.pid() is not None and stack.name in {s.name for s in stack.workspace.list_stacks()}:
                    stack.destroy(on_output=quiet)
            finally:
                engine.remove()
                remove_data_dir(data_dir)
