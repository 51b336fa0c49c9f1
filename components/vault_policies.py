"""Vault policy documents, as pure functions."""


def creds_path(mount: str, role: str) -> str:
    """Where a dynamic role's credentials are issued."""
    return f"{mount}/creds/{role}"


def client_policy(mount: str, role: str) -> str:
    """Least privilege for one client: read its own creds path, renew and revoke only its own leases,
    look up, renew and revoke its own token; nothing else.

    Its AppRole role gives no `default` policy (`token_no_default_policy`): that
    one lets a token renew any lease whose id it knows (`sys/leases/renew` with
    the id in the body). Here renewal and revocation take the lease id in the
    path, which is scoped to this creds path.
    """
    creds = creds_path(mount, role)
    rules = [
        (creds, "read"),
        (f"sys/leases/renew/{creds}/*", "update"),
        (f"sys/leases/revoke/{creds}/*", "update"),
        ("auth/token/lookup-self", "read"),
        ("auth/token/renew-self", "update"),
        ("auth/token/revoke-self", "update"),
    ]
    return "\n".join(f'path "{path}" {{\n  capabilities = ["{capability}"]\n}}\n' for path, capability in rules)
