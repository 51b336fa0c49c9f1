"""Where the tests look for a stack's secrets in plaintext: every secret the state holds (decrypted),
searched for in what people and tools see, on every target."""

import json


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
