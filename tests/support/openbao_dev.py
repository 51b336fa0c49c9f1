"""A dev-mode OpenBao server on loopback, for tests that need any Vault API to talk to (the toolchain
smoke test, the policy gate's previews). Dev mode is for these tests only: stacks run real servers."""

import contextlib
import secrets
import subprocess
import time
from pathlib import Path
from typing import Iterator

import hvac

from components.servers.openbao import bao_binary
from tests.support.ports import free_port


@contextlib.contextmanager
def dev_openbao(log_dir: Path) -> Iterator[hvac.Client]:
    """A client of the server, with its root token."""
    token, address = secrets.token_urlsafe(24), f"127.0.0.1:{free_port()}"
    with open(log_dir / "bao-dev.log", "w") as log:
        server = subprocess.Popen(
            [str(bao_binary()), "server", "-dev", f"-dev-root-token-id={token}", f"-dev-listen-address={address}"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            client = hvac.Client(url=f"http://{address}", token=token)
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.sys.is_initialized():
                        break
                except Exception:  # noqa: BLE001 - not listening yet
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            yield client
        finally:
            server.terminate()
            server.wait(timeout=30)


def provider_config(client: hvac.Client) -> dict:
    """Stack config pointing pulumi-vault's default provider at this server with its root token (secret)."""
    from pulumi import automation as auto

    return {"vault:address": auto.ConfigValue(client.url),
            "vault:token": auto.ConfigValue(client.token, secret=True)}
