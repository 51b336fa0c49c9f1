"""Vault policy documents, as pure functions."""


def client_policy(mount: str, role: str) -> str:
    """Least privilege for one client: read its own creds path, renew leases, revoke only its own.

    Renewing by lease id is in Vault's default policy; revocation by path is
    scoped here to leases of this creds path.
    """
    creds = f"{mount}/creds/{role}"
    return (
        f'path "{creds}" {{\n  capabilities = ["read"]\n}}\n\n'
        f'path "sys/leases/renew" {{\n  capabilities = ["update"]\n}}\n\n'
        f'path "sys/leases/revoke/{creds}/*" {{\n  capabilities = ["update"]\n}}\n'
    )
