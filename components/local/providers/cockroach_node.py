"""A local single-node CockroachDB as a Pulumi resource: certs, node, admin, database and group roles.

Around `components.servers.cockroach` (needs a `cockroach` binary: the check at
preview fails, naming it, when there is none). The admin's password is sent
once, at create; Vault rotates it, and the provider never sends it again. The
group roles of the grant specs are applied as root (client certificate) on
create and whenever the specs change.
"""

import time
from pathlib import Path
from typing import Any, Optional

import psycopg
import pulumi
from psycopg import sql
from pulumi.dynamic import CheckFailure, CreateResult, UpdateResult

from components.dynamic.failures import failing_as
from components.local.providers.local_server import LocalDatabaseServer, LocalServerProvider
from components.grant_specs import GrantSpec, grant_spec_of_props, grant_spec_props
from components.servers.cockroach import LocalCockroach, LocalCockroachError, cockroach_binary
from components.postgres_sql import DEMO_SCHEMA, schemas_of, set_password
from components.sql_dialects import COCKROACHDB


def _server(props: dict[str, Any]) -> LocalCockroach:
    return LocalCockroach(Path(props["data_dir"]), int(props["port"]), int(props["http_port"]))


def _specs(props: dict[str, Any]) -> dict[str, GrantSpec]:
    """Group role name -> its grant spec."""
    return {group: grant_spec_of_props(s) for group, s in props["groups"].items()}


def _apply_groups(server: LocalCockroach, props: dict[str, Any], olds: Optional[dict[str, Any]] = None) -> None:
    """Each group holds exactly its spec's privileges; groups no longer declared are dropped."""
    database = props["database"]
    old_specs, specs = _specs(olds) if olds else {}, _specs(props)
    with failing_as(f"granting the group roles in database {database!r} of CockroachDB at {server.data_dir}"), \
            server.root_connection(database) as conn:
        for group, spec in specs.items():
            conn.execute(COCKROACHDB.create_group_role(group))
            schemas = sorted(set(schemas_of(spec)) | set(schemas_of(old_specs.get(group, spec))))
            for statement in [*COCKROACHDB.revoke_statements(schemas, group, database),
                              *COCKROACHDB.grant_statements(spec, group, database)]:
                # A failure names its statement (the object, privileges and group; no secret in it).
                with failing_as(f"group role {group!r}: {statement}"):
                    conn.execute(statement)
        for group in set(old_specs) - set(specs):
            for statement in COCKROACHDB.revoke_statements(schemas_of(old_specs[group]), group, database):
                conn.execute(statement)
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(group)))


class _CockroachNodeProvider(LocalServerProvider):
    server = staticmethod(_server)
    port_inputs = ("port", "http_port")
    # admin_password is in none of them: it is used only at create.
    replace_inputs = ("data_dir", "admin", "database")
    restart_inputs = ("port", "http_port", "files")
    live_inputs = ("groups",)  # Applied as root.

    def preflight(self, props: dict[str, Any]) -> list[CheckFailure]:
        try:
            cockroach_binary()
        except LocalCockroachError as error:
            return [CheckFailure("data_dir", str(error))]
        return []

    def create(self, props: dict[str, Any]) -> CreateResult:
        def build(server: LocalCockroach) -> CreateResult:
            server.write_certs(props["files"])
            server.start()
            admin, database, password = props["admin"], props["database"], props["admin_password"]
            where = f"CockroachDB at {server.data_dir}"
            with failing_as(f"making the admin {admin!r} and database {database!r} of {where}"), \
                    server.root_connection() as conn:
                for statement in COCKROACHDB.bootstrap_admin_statements(admin, database):
                    conn.execute(statement)
                conn.execute(set_password(admin, password))
            # The admin owns the demo tables, so it can grant on them.
            with failing_as(f"making the demo tables in database {database!r} of {where}"), \
                    psycopg.connect(host="127.0.0.1", port=server.port, dbname=database, user=admin,
                                    password=password, sslmode="verify-full",
                                    sslrootcert=str(server.certs_dir / "ca.crt"), autocommit=True) as conn:
                for statement in DEMO_SCHEMA:
                    conn.execute(statement)
            _apply_groups(server, props)
            # A new node has a new bootstrap password: Vault's connection must be sent it (and rotate it).
            return CreateResult(id_=str(server.data_dir), outs={**props, "host": "127.0.0.1",
                                                               "admin_password_version": int(time.time())})

        return self.create_fresh(props, build)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        old, new = _server(olds), _server(news)
        if self.must_restart(olds, news):
            old.stop()
            new.write_certs(news["files"])
        new.start()
        _apply_groups(new, news, olds)
        return UpdateResult(outs={**news, "admin_password": olds["admin_password"], "host": "127.0.0.1",
                                  "admin_password_version": olds["admin_password_version"]})


class LocalCockroachNode(LocalDatabaseServer):
    """`cockroach start-single-node` on 127.0.0.1 with its certs, admin, database and group roles."""

    def __init__(
        self, name: str, data_dir: str, port: int, http_port: int, database: str, admin: str,
        admin_password: pulumi.Input[str], files: pulumi.Input[dict], groups: dict[str, GrantSpec],
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        props = {
            "data_dir": data_dir, "port": port, "http_port": http_port, "database": database, "admin": admin,
            "admin_password": pulumi.Output.secret(admin_password), "files": pulumi.Output.secret(files),
            "groups": {g: grant_spec_props(s) for g, s in groups.items()},
            "host": None, "admin_password_version": None,
        }
        opts = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=["admin_password", "files"]))
        super().__init__(_CockroachNodeProvider(), name, props, opts)
