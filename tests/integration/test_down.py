"""`make down` (toolchain/down.py) on the root program's stack, with leases outstanding."""

import concurrent.futures
from pathlib import Path

import pytest

from stacks import local
from tests.support.dev_stack import dev_stack
from toolchain import down


def stack_args(running):
    return running.stack.name, running.stack.workspace.env_vars, Path(running.stack.workspace.work_dir)


def test_down_revokes_every_lease_proves_it_and_leaves_nothing(tmp_path, capfd):
    with dev_stack(tmp_path, "down") as running:
        def take(client: str) -> str:
            vault = running.login(client)
            return vault.read(running.outputs["clients"][client]["creds_path"])["data"]["username"]

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            users = list(pool.map(take, ["reader", "app"] * 25))
        assert sorted(local.dynamic_users(running.config)) == sorted(users) and len(users) == 50
        admin = running.admin()
        assert len(down.leases_left(admin, "database")) == 50

        # A dynamic user Vault knows nothing of: down refuses, naming it, and destroys nothing.
        with local.superuser(running.config) as conn:
            conn.execute("CREATE ROLE v_left_behind LOGIN")
        with pytest.raises(down.DownError, match="1 dynamic database user.* left after revocation: v_left_behind"):
            down.down(*stack_args(running))
        assert down.leases_left(admin, "database") == [] and local.dynamic_users(running.config) == [
            "v_left_behind"]
        assert running.stack.export_stack().deployment["resources"]
        with local.superuser(running.config) as conn:
            conn.execute("DROP ROLE v_left_behind")

        for client in ("reader", "app"):
            take(client)
        capfd.readouterr()
        down.down(*stack_args(running))
        err = capfd.readouterr().err
        assert "revoking 2 lease(s) under database/" in err and "no lease and no dynamic database user left" in err
        # Nothing is left: no stack, no server process, no data folder.
        assert running.stack.name not in {s.name for s in running.stack.workspace.list_stacks()}
        assert local.running_servers(running.config) == []
        assert not local.vault_server(running.config).data_dir.exists()
        assert not local.database_server(running.config).data_dir.exists()


def test_down_of_a_stack_that_does_not_exist_fails_naming_it(tmp_path):
    from toolchain.env import pulumi_env

    env = pulumi_env(tmp_path / "pulumi")
    Path(env["PULUMI_BACKEND_URL"].removeprefix("file://")).mkdir(parents=True)
    with pytest.raises(down.DownError, match="stack 'nowhere' does not exist"):
        down.down("nowhere", env)
