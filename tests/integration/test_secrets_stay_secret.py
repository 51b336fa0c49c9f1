"""The stack's real secrets never appear in plaintext where people and tools look.

The secrets are read back from the decrypted state (the only place they are
meant to be): the admin's bootstrap password, OpenBao's root token and unseal
keys, and the private keys of the bootstrap PKI. Then every place a person or
a CI log would see is searched for them: the state file as stored, `pulumi
stack output` without --show-secrets, the engine's output of up, preview and
refresh and of an `up` that fails (a client's role edited by hand in Vault, so
the checks fail after they logged in and issued), every log and file the servers write (the private keys aside, which a
server must read from its data folder), and this test's own captured output.

Beside those, every credential Vault hands out while the stack runs: an audit
device with `log_raw` (declared in OpenBao's config, reloaded with SIGHUP,
writing outside the data folder) records each response in the clear during an
`up` (whose checks issue passwords, read static ones, log in with the
secret_ids) and this test's own issuance; every password, secret_id and token
in it is searched for too.
"""

import json
import os
import signal
import subprocess
import time
import uuid

import hvac
import pytest
from pulumi import automation as auto

from components.vault.checks import revoke
from tests.automation import local_servers_config, root_program, state_text, temporary_stack
from tests.support.secret_scan import failing_up, plaintext_secrets, role_broken_by_hand, search
from toolchain.env import ROOT
from tests.support.processes import remove_data_dir

ROLES = {"reader": {"privileges": ["SELECT"], "schemas": ["public"], "default_ttl": "1h", "max_ttl": "2h"}}
SERVICE_USERS = {"svc_reporting": {"role": "reader", "rotation_period": "24h"}}
CLIENTS = {"reader": {"role": "reader", "allowed": ["SELECT count(*) FROM public.users"],
                      "forbidden": ["CREATE TABLE public.probe (id int)"]}}


CREDENTIAL_KEYS = ("password", "secret_id", "client_token")


def credentials_in(raw_audit_log: str) -> dict[str, str]:
    """Every password, secret_id and token in a raw audit log's requests (a login's secret_id) and
    responses (issued passwords, tokens), by where it came from."""
    found = {}
    for number, line in enumerate(raw_audit_log.splitlines()):
        entry = json.loads(line)
        request, response = entry.get("request") or {}, entry.get("response") or {}
        for part in (request.get("data"), response.get("data"), response.get("auth")):
            for key, value in (part or {}).items():
                if key in CREDENTIAL_KEYS and isinstance(value, str) and value:
                    found[f"raw audit {entry['request']['path']}#{number}.{key}"] = value
    return found


def capture_raw(data_dir, raw_log) -> None:
    """Declares a raw file audit device in OpenBao's config and reloads it (the API may not add one)."""
    config = data_dir / "openbao" / "config.hcl"
    config.write_text(config.read_text() + f'''
audit "file" "raw" {{
  options {{
    file_path = "{raw_log}"
    log_raw   = "true"
  }}
}}
''')
    os.kill(int((data_dir / "openbao" / "bao.pid").read_text()), signal.SIGHUP)
    deadline = time.monotonic() + 30
    while "enabled audit backend: path=raw/" not in (data_dir / "openbao" / "server.log").read_text():
        assert time.monotonic() < deadline, "OpenBao did not add the raw audit device"
        time.sleep(0.2)


@pytest.fixture
def data_dir():
    """The stack's data folder (under the checkout: PostgreSQL's system user may not enter pytest's
    tmp folders), removed after the stack's destroy whatever the test found."""
    folder = ROOT / ".data" / "tests" / f"secrets-{uuid.uuid4().hex[:8]}"
    try:
        yield folder
    finally:
        remove_data_dir(folder)


def test_no_secret_in_plaintext_anywhere(tmp_path, capsys, data_dir):
    engine_output: list[str] = []
    with temporary_stack(root_program(tmp_path), tmp_path, "secrets") as stack:
        stack.set_config("dbcreds:roles", auto.ConfigValue(json.dumps(ROLES)), path=False)
        stack.set_config("dbcreds:service_users", auto.ConfigValue(json.dumps(SERVICE_USERS)), path=False)
        stack.set_config("dbcreds:clients", auto.ConfigValue(json.dumps(CLIENTS)), path=False)
        stack.set_all_config(local_servers_config(data_dir))
        outputs = stack.up(on_output=engine_output.append).outputs
        raw_log = tmp_path / "raw-audit.log"
        capture_raw(data_dir, raw_log)
        # The checks issue and revoke credentials in every up; a client issues its own here.
        stack.up(on_output=engine_output.append)
        (tmp_path / "vault-ca.pem").write_text(outputs["vault_ca_pem"].value)
        client = hvac.Client(url=outputs["vault_addr"].value, verify=str(tmp_path / "vault-ca.pem"))
        access = outputs["clients"].value["reader"]
        client.auth.approle.login(role_id=access["role_id"], secret_id=access["secret_id"],
                                  mount_point=access["approle_mount"])
        issued = client.read(access["creds_path"])
        revoke(client, issued["lease_id"])
        # A failing up: the reader's role edited by hand in Vault (its users made outside their group),
        # so the checks log in with the secret_ids, issue a password and fail naming the check.
        admin = hvac.Client(url=outputs["vault_addr"].value, token=outputs["vault_admin_token"].value,
                            verify=str(tmp_path / "vault-ca.pem"))
        with role_broken_by_hand(admin, access["creds_path"]):
            failed = failing_up(stack)
        assert "reader: allowed statements run over verify-full" in failed, failed[-3000:]
        engine_output.append(failed)
        # The database's log, searched below, holds the failure too: the texts read are the right ones.
        assert any("permission denied for database" in path.read_bytes().decode("latin-1")
                   for path in data_dir.rglob("*.log")), "the failure is in no log of the data folder"
        stack.preview(on_output=engine_output.append, diff=True)
        stack.refresh(on_output=engine_output.append)
        secrets = plaintext_secrets(stack)
        handed_out = credentials_in(raw_log.read_text())
        kinds = sorted({name.rsplit(".", 1)[1] for name in handed_out})
        # Sanity: the checks' passwords (one per client, and the static role's), the secret_id they
        # logged in with, their tokens, and this test's own password are all there.
        assert kinds == ["client_token", "password", "secret_id"], kinds
        assert issued["data"]["password"] in handed_out.values()
        assert sum(1 for n in handed_out if n.endswith(".password")) >= 3
        secrets.update(handed_out)
        # Sanity: the search has real secrets to look for.
        kinds = {name.split(".", 1)[1].split("[")[0] for name in secrets}
        assert {"admin_password", "root_token", "unseal_keys", "key_pem", "privateKeyPem", "result", "secretId"} <= kinds, kinds

        hits = search(secrets, state_text(stack), "the state file")
        cli = subprocess.run(
            [str(ROOT / ".tools" / "bin" / "pulumi"), "stack", "output", "--json", "--stack", stack.name],
            cwd=stack.workspace.work_dir, env={**stack.workspace.env_vars}, capture_output=True, text=True,
            check=True,
        )
        assert json.loads(cli.stdout)["vault_admin_token"] == "[secret]"
        hits += search(secrets, cli.stdout + cli.stderr, "pulumi stack output")
        hits += search(secrets, "\n".join(engine_output), "the engine's output")
        # The raw audit log is outside the data folder: it is the witness, not a place searched.
        for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
            if path.name.endswith(".key"):
                continue  # A server's own private key, mode 0600: where it has to be.
            hits += search(secrets, path.read_bytes().decode("latin-1"), str(path.relative_to(data_dir)))
        captured = capsys.readouterr()
        hits += search(secrets, captured.out + captured.err, "the test output")
        assert hits == []
