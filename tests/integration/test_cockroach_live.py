"""The CockroachDB stack for real: only where a `cockroach` binary is on PATH (or $DBCREDS_COCKROACH).

None is reachable from this project's build machines, so here these tests are
reported as skipped. They bring up a stack with db_engine cockroachdb and prove
the certs directory, the admin, the group roles and the dynamic-role SQL on
the real node.
"""

import json
import secrets
import stat
import uuid

import psycopg
import pytest
from pulumi import automation as auto

from components.cockroach_sql import creation_statements, revocation_statements
from components.servers.cockroach import LocalCockroach, LocalCockroachError, cockroach_binary
from tests.automation import local_servers_config, root_program, temporary_stack
from toolchain.env import ROOT
from tests.support.processes import remove_data_dir

try:
    cockroach_binary()
except LocalCockroachError as missing:
    pytest.skip(f"CockroachDB live tests: {missing}", allow_module_level=True)

ROLES = {"reader": {"privileges": ["SELECT"], "schemas": ["public"], "default_ttl": "1h", "max_ttl": "2h"}}


def quiet(_line: str) -> None:
    """Keeps engine output out of the test log."""


def render(statement: str, name: str, password: str) -> str:
    return (statement.replace("{{name}}", name).replace("{{password}}", password)
            .replace("{{expiration}}", "2099-01-01 00:00:00+00"))


def test_cockroach_stack(tmp_path):
    data_dir = ROOT / ".data" / "tests" / f"crdb-{uuid.uuid4().hex[:8]}"
    with temporary_stack(root_program(tmp_path), tmp_path, "crdb") as stack:
        stack.set_config("dbcreds:roles", auto.ConfigValue(json.dumps(ROLES)), path=False)
        stack.set_all_config({**local_servers_config(data_dir), "dbcreds:db_engine": auto.ConfigValue("cockroachdb")})
        outputs = stack.up(on_output=quiet).outputs
        port = outputs["db_port"].value
        assert outputs["db_engine"].value == "cockroachdb"
        node = LocalCockroach(data_dir / "cockroach", port, 0)
        for key in node.certs_dir.glob("*.key"):
            assert stat.S_IMODE(key.stat().st_mode) == 0o600
        group = outputs["db_group_roles"].value["reader"]
        user, password = f"v_reader_{uuid.uuid4().hex[:12]}", secrets.token_urlsafe(16)
        with node.root_connection(outputs["db_name"].value) as root:
            for statement in creation_statements(group):
                root.execute(render(statement, user, password))
        ca = tmp_path / "ca.crt"
        ca.write_text(outputs["db_ca_pem"].value)
        dsn = dict(host="127.0.0.1", port=port, dbname=outputs["db_name"].value, user=user, password=password,
                   sslmode="verify-full", sslrootcert=str(ca), autocommit=True)
        with psycopg.connect(**dsn) as conn:
            assert conn.execute("SELECT count(*) FROM public.users").fetchone()[0] == 3
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DELETE FROM public.users")
        with node.root_connection(outputs["db_name"].value) as root:
            for statement in revocation_statements(group):
                root.execute(render(statement, user, password))
            assert root.execute("SELECT count(*) FROM [SHOW USERS] WHERE username = %s", (user,)).fetchone()[0] == 0
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(**dsn)
    remove_data_dir(data_dir)
