"""Where the tests look for a stack's secrets in plaintext: every secret the state holds (decrypted),
searched for in what people and tools see, on every target."""

import contextlib
import json
from typing import Iterator

import hvac
import pytest
from pulumi import automation as auto


def plaintext_secrets(stack) -> dict[str, str]:
    """Every secret output of every resource, decrypted, by where it came from."""
    found = {}
    for resource in stack.export_stack().deployment["resources"]:
        for key, value in (resource.get("outputs") or {}).items():
            if isinstance(value, dict) and "plaintext" in value:
                decoded = json.loads(value["plaintext"])
                values = decoded if isinstance(decoded, list) else [decoded]
                if resource["type"] == "kubernetes:core/v1:Secret" and isinstance(decoded, dict):
                    # A Secret's data by key; its certificates are public (a TLS Secret holds its CA's).
                    values = [v for v in decoded.values() if "BEGIN CERTIFICATE" not in str(v)]
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


#: A dynamic user made outside its group (what a role's creation SQL edited by hand may do): it holds
#: nothing, not even CONNECT on the database (its group's), so the checks' allowed statements fail.
UNGROUPED_CREATION = ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'"]


@contextlib.contextmanager
def role_broken_by_hand(vault: hvac.Client, creds_path: str) -> Iterator[None]:
    """A client's dynamic role (its creds path's) with its creation SQL replaced in Vault by hand, as
    an operator might, and put back afterwards whatever happened; the stack does not know (an up
    without refresh keeps it), so its checks, which log in and issue, fail the up."""
    path = creds_path.replace("/creds/", "/roles/", 1)
    kept = vault.read(path)["data"]["creation_statements"]
    assert kept and kept != UNGROUPED_CREATION, path
    vault.write(path, creation_statements=UNGROUPED_CREATION)
    try:
        yield
    finally:
        vault.write(path, creation_statements=kept)
        assert vault.read(path)["data"]["creation_statements"] == kept, path


def failing_up(stack: auto.Stack, **kwargs) -> str:
    """An `up` that must fail: all it said, the engine's output and its error, to be searched."""
    lines: list[str] = []
    with pytest.raises(auto.CommandError) as failed:
        stack.up(on_output=lines.append, **kwargs)
    return "\n".join(lines) + "\n" + str(failed.value)
