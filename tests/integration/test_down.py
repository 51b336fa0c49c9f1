"""`make down` (toolchain/down.py) on the root program's stack, with leases outstanding."""

import concurrent.futures
from pathlib import Path

import psycopg
import pytest

from components.postgres_sql import (TeamDatabaseNames, team_creation_statements, team_renew_statements,
                                     team_revocation_statements)
from stacks import local_target as local
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
        # A lease of the team's mount, taken with the team's own credential from a role it wrote: its user is
        # made and dropped by the team's functions.
        team = running.outputs["teams"]["reports"]
        vault = running.login_with(team)
        names = TeamDatabaseNames("reports")
        vault.secrets.database.create_role(
            "reports", db_name=team["connection_name"], creation_statements=team_creation_statements(names),
            renew_statements=team_renew_statements(names), revocation_statements=team_revocation_statements(names),
            default_ttl=600, max_ttl=600, mount_point=team["database_mount"])
        team_user = vault.read(f"{team['database_mount']}/creds/reports")["data"]["username"]
        assert team_user in local.dynamic_users(running.config)

        # A dynamic user no lease holds (Vault went down between making it and recording its lease), with a
        # session open: down drops it as Vault's revocation would, naming it, and goes on.
        with local.superuser(running.config) as conn:
            conn.execute("CREATE ROLE v_left_behind LOGIN IN ROLE dbcreds_group_reader PASSWORD 'left-behind'")
        orphan_session = running.connect("v_left_behind", "left-behind")
        capfd.readouterr()
        down.down(*stack_args(running))
        err = capfd.readouterr().err
        assert "revoking 50 lease(s) under database/" in err and "no lease and no dynamic database user left" in err
        assert "revoking 1 lease(s) under team-reports-db/" in err and team_user not in err
        assert "dropping 1 dynamic database user(s) that no lease held: v_left_behind" in err
        with pytest.raises(psycopg.OperationalError):
            orphan_session.execute("SELECT 1")
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
