"""The platform program (`__main__.py`) up on a temporary stack, and clients of what it made.

The stack has the dev stack file's config, with its own ports and data
folder; tests reach Vault and the database only through its outputs, as a
team using the stack would.
"""

import contextlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import hvac
import psycopg
import requests
from pulumi import automation as auto

from components.servers.openbao import serving_address
from stacks import config as stack_settings
from stacks.config import StackConfig
from tests.automation import local_servers_config, root_program, stack_file_config, temporary_stack
from toolchain.env import ROOT
from tests.support.processes import remove_data_dir


def quiet(_line: str) -> None:
    """Keeps engine output out of the test log."""


@dataclass
class DevStack:
    stack: auto.Stack
    outputs: dict[str, Any]
    config: StackConfig
    data_dir: Path
    files: Path
    #: Each output's secret flag.
    secret: dict[str, bool] = field(default_factory=dict)

    def up(self, **kwargs) -> auto.UpResult:
        """`up` again; the outputs and config follow."""
        result = self.stack.up(on_output=quiet, **kwargs)
        self._read(result.outputs)
        return result

    def _read(self, outputs: dict[str, auto.OutputValue]) -> None:
        self.outputs = {k: v.value for k, v in outputs.items()}
        self.secret = {k: v.secret for k, v in outputs.items()}
        self.config = stack_settings.of_stack(self.stack, ROOT)

    def set_config(self, key: str, value: str) -> None:
        self.stack.set_config(f"dbcreds:{key}", auto.ConfigValue(value), path=False)

    def ca_file(self, name: str) -> str:
        """The CA output `name` as a file (written when it changes; threads may read it meanwhile)."""
        path = self.files / f"{name}.pem"
        if not path.exists() or path.read_text() != self.outputs[name]:
            staged = path.with_suffix(f".{threading.get_ident()}")
            staged.write_text(self.outputs[name])
            staged.replace(path)
        return str(path)

    def vault_address(self) -> str:
        """Where to reach Vault: its address, or on a cluster a node that serves now."""
        addresses = self.outputs.get("vault_addrs") or [self.outputs["vault_addr"]]
        return serving_address(addresses, self.ca_file("vault_ca_pem"))

    def admin(self) -> hvac.Client:
        """Vault with the stack's admin token."""
        return hvac.Client(url=self.vault_address(), token=self.outputs["vault_admin_token"],
                           verify=self.ca_file("vault_ca_pem"), timeout=30)

    def sealed_once_it_answers(self, timeout: float = 60) -> bool:
        """Whether Vault is sealed, once it answers (a restarted server takes a moment)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.admin().sys.is_sealed()
            except requests.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def login(self, client: str) -> hvac.Client:
        """Vault as one of the stack's clients, logged in with its AppRole role_id and secret_id."""
        return self.login_with(self.outputs["clients"][client])

    def login_with(self, access: dict) -> hvac.Client:
        """Vault as the client of these AppRole outputs ({approle_mount, role_id, secret_id})."""
        vault = hvac.Client(url=self.vault_address(), verify=self.ca_file("vault_ca_pem"), timeout=30)
        vault.auth.approle.login(role_id=access["role_id"], secret_id=access["secret_id"],
                                 mount_point=access["approle_mount"])
        return vault

    def connect(self, user: str, password: str, sslmode: str = "verify-full", **kwargs) -> psycopg.Connection:
        """The application database, verifying the server against the stack's database CA."""
        return psycopg.connect(
            host=self.outputs["db_host"], port=self.outputs["db_port"], dbname=self.outputs["db_name"], user=user,
            password=password, sslmode=sslmode, sslrootcert=self.ca_file("db_ca_pem"), connect_timeout=10,
            **kwargs,
        )

    def connect_as(self, client: str) -> psycopg.Connection:
        """The application database with a dynamic credential issued to one of the stack's clients."""
        creds = self.login(client).read(self.outputs["clients"][client]["creds_path"])["data"]
        return self.connect(creds["username"], creds["password"])

    def write_kept_row(self) -> None:
        """A row written with the app client's credential, to find after a restart."""
        with self.connect_as("app") as conn:
            conn.execute("INSERT INTO public.users (name, email) VALUES ('kept', 'kept@example.com')")

    def kept_rows(self) -> int:
        """How many rows write_kept_row wrote, read with the reader client's credential."""
        with self.connect_as("reader") as conn:
            return conn.execute("SELECT count(*) FROM public.users WHERE email = 'kept@example.com'").fetchone()[0]


@contextlib.contextmanager
def dev_stack(tmp_path: Path, prefix: str = "dev", **config: str) -> Iterator[DevStack]:
    """The root program up on a new stack (dev's config, its own ports and data folder; `config`
    overrides dbcreds settings), destroyed and removed afterwards."""
    # Under the checkout: PostgreSQL's system user may not enter pytest's private tmp folders.
    data_dir = ROOT / ".data" / "tests" / f"{prefix}-{uuid.uuid4().hex[:8]}"
    files = tmp_path / "files"
    files.mkdir(parents=True)
    try:
        with temporary_stack(root_program(tmp_path), tmp_path, prefix) as stack:
            stack.set_all_config({
                **stack_file_config("dev"), **local_servers_config(data_dir),
                **{f"dbcreds:{k}": auto.ConfigValue(v) for k, v in config.items()},
            })
            result = stack.up(on_output=quiet)
            running = DevStack(stack, {}, stack_settings.of_stack(stack, ROOT), data_dir, files)
            running._read(result.outputs)
            yield running
    finally:
        remove_data_dir(data_dir)
