"""The stack's real secrets never appear in plaintext where people and tools look.

The secrets are read back from the decrypted state (the only place they are
meant to be): the admin's bootstrap password, OpenBao's root token and unseal
keys, and the private keys of the bootstrap PKI. Then every place a person or
a CI log would see is searched for them: the state file as stored, `pulumi
stack output` without --show-secrets, the engine's output of up, preview and
refresh, every log and file the servers write (the private keys aside, which a
server must read from its data folder), and this test's own captured output.
"""

import json
import shutil
import subprocess
import uuid

from pulumi import automation as auto

from tests.automation import local_servers_config, root_program, state_text, temporary_stack
from toolchain.env import ROOT

ROLES = {"reader": {"privileges": ["SELECT"], "schemas": ["public"], "default_ttl": "1h", "max_ttl": "2h"}}
SERVICE_USERS = {"svc_reporting": {"role": "reader", "rotation_period": "24h"}}
CLIENTS = {"reader": {"role": "reader", "allowed": ["SELECT count(*) FROM public.users"],
                      "forbidden": ["CREATE TABLE public.probe (id int)"]}}


def plaintext_secrets(stack) -> dict[str, str]:
    """Every secret output of every resource, decrypted, by where it came from."""
    found = {}
    for resource in stack.export_stack().deployment["resources"]:
        for key, value in (resource.get("outputs") or {}).items():
            if isinstance(value, dict) and "plaintext" in value:
                decoded = json.loads(value["plaintext"])
                values = decoded if isinstance(decoded, list) else [decoded]
                for i, item in enumerate(values):
                    if isinstance(item, str) and len(item) >= 16:
                        found[f"{resource['urn'].rsplit('::', 1)[1]}.{key}[{i}]"] = item
    return found


def search(secrets: dict[str, str], text: str, where: str) -> list[str]:
    """The secrets found in text; a PEM key is searched for by its body, a long base64 run."""
    hits = []
    for name, secret in secrets.items():
        needle = secret
        if "PRIVATE KEY-----" in secret:
            needle = "".join(secret.splitlines()[1:-1])[:64]
            text_to_search = "".join(text.splitlines())
        else:
            text_to_search = text
        if needle in text_to_search:
            hits.append(f"{name} in {where}")
    return hits


def test_no_secret_in_plaintext_anywhere(tmp_path, capsys):
    data_dir = ROOT / ".data" / "tests" / f"secrets-{uuid.uuid4().hex[:8]}"
    engine_output: list[str] = []
    with temporary_stack(root_program(tmp_path), tmp_path, "secrets") as stack:
        stack.set_config("dbcreds:roles", auto.ConfigValue(json.dumps(ROLES)), path=False)
        stack.set_config("dbcreds:service_users", auto.ConfigValue(json.dumps(SERVICE_USERS)), path=False)
        stack.set_config("dbcreds:clients", auto.ConfigValue(json.dumps(CLIENTS)), path=False)
        stack.set_all_config(local_servers_config(data_dir))
        stack.up(on_output=engine_output.append)
        stack.preview(on_output=engine_output.append, diff=True)
        stack.refresh(on_output=engine_output.append)
        secrets = plaintext_secrets(stack)
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
        for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
            if path.name.endswith(".key"):
                continue  # A server's own private key, mode 0600: where it has to be.
            hits += search(secrets, path.read_bytes().decode("latin-1"), str(path.relative_to(data_dir)))
        captured = capsys.readouterr()
        hits += search(secrets, captured.out + captured.err, "the test output")
        assert hits == []
    shutil.rmtree(data_dir, ignore_errors=True)
