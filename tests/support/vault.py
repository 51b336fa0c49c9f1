"""A real OpenBao server for tests, and the database secrets engine configured on it with hvac.

The product configures Vault through pulumi-vault resources; that provider
cannot be built here yet, so these tests configure the same things (the
generated SQL, username template, verify-full connection, root rotation,
AppRole clients with the generated policies) through the Vault API directly.
"""

import contextlib
import shutil
import uuid
from dataclasses import dataclass
from typing import Iterator, Sequence

import hvac

from components.dynamic.tls import issue_certificate, make_ca
from components.grants import GrantSpec, ServiceUser
from components.local.openbao import INIT_TIMEOUT_SECONDS, LocalOpenBao, initialize, unseal
from components.postgres_sql import creation_statements, group_role_name, revocation_statements, username_template
from components.vault_policies import client_policy
from tests.support.ports import free_port
from tests.support.postgres import TestDatabase
from toolchain.env import ROOT


@dataclass
class TestVault:
    server: LocalOpenBao
    root: hvac.Client
    ca_pem: str
    unseal_keys: list[str]


@contextlib.contextmanager
def running_openbao() -> Iterator[TestVault]:
    data = ROOT / ".data" / "tests" / f"bao-{uuid.uuid4().hex[:8]}"
    ca = make_ca("test Vault CA", validity_hours=2)
    cert = issue_certificate(ca["cert_pem"], ca["private_key_pem"], "localhost", ["localhost"],
                             ["127.0.0.1"], server=True, client=False, validity_hours=2)
    server = LocalOpenBao(data, free_port(), free_port())
    try:
        server.configure(ca["cert_pem"], cert["cert_pem"], cert["private_key_pem"])
        server.start()
        client = server.client()
        token, keys = initialize(server.client(timeout=INIT_TIMEOUT_SECONDS), 1, 1)
        unseal(client, keys)
        client.token = token
        yield TestVault(server, client, ca["cert_pem"], keys)
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


@dataclass
class Client:
    name: str
    role_id: str
    secret_id: str
    creds_path: str


def configure_database_engine(
    vault: TestVault, db: TestDatabase, specs: Sequence[GrantSpec], mount: str = "database",
    connection: str = "app", rotate_root: bool = True, service_users: Sequence[ServiceUser] = (),
) -> dict[str, Client]:
    """Mount, verify-full connection, roles from the specs, root rotation, one AppRole client per spec,
    a static role per service user (as components/secrets_engine.py declares them)."""
    root = vault.root
    db_ca = vault.server.data_dir / "tls" / "db-ca.crt"
    db_ca.write_text(db.ca_file.read_text())
    root.sys.enable_secrets_engine("database", path=mount)
    root.secrets.database.configure(
        name=connection, plugin_name="postgresql-database-plugin", mount_point=mount,
        allowed_roles=[s.name for s in specs] + [u.username for u in service_users],
        connection_url=(f"postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{db.server.port}/"
                        f"{db.database}?sslmode=verify-full&sslrootcert={db_ca}"),
        username=db.admin, password=db.admin_password, username_template=username_template(),
    )
    if rotate_root:
        root.secrets.database.rotate_root_credentials(name=connection, mount_point=mount)
    for user in service_users:
        root.write(f"{mount}/static-roles/{user.username}", db_name=connection, username=user.username,
                   rotation_period=user.rotation_period)
    root.sys.enable_auth_method("approle", path="approle")
    clients = {}
    for spec in specs:
        root.secrets.database.create_role(
            name=spec.name, db_name=connection, mount_point=mount,
            creation_statements=creation_statements(group_role_name("dbcreds_group", spec)),
            revocation_statements=revocation_statements(),
            default_ttl=spec.default_ttl, max_ttl=spec.max_ttl,
        )
        root.sys.create_or_update_policy(name=f"client-{spec.name}", policy=client_policy(mount, spec.name))
        root.auth.approle.create_or_update_approle(
            role_name=spec.name, token_policies=[f"client-{spec.name}"], token_ttl="15m", token_max_ttl="1h",
            secret_id_ttl="1h", mount_point="approle",
        )
        role_id = root.auth.approle.read_role_id(spec.name, mount_point="approle")["data"]["role_id"]
        secret_id = root.auth.approle.generate_secret_id(spec.name, mount_point="approle")["data"]["secret_id"]
        clients[spec.name] = Client(spec.name, role_id, secret_id, f"{mount}/creds/{spec.name}")
    return clients
