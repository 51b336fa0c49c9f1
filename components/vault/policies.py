"""Vault policy documents, as pure functions."""


#: A token may look up, renew and revoke itself.
_OWN_TOKEN = (("auth/token/lookup-self", "read"), ("auth/token/renew-self", "update"),
              ("auth/token/revoke-self", "update"))


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
    return render_policy([
        (creds, "read"),
        (f"sys/leases/renew/{creds}/*", "update"),
        (f"sys/leases/revoke/{creds}/*", "update"),
        *_OWN_TOKEN,
    ])


def render_policy(rules) -> str:
    """A policy document from (path, capability) pairs."""
    return "\n".join(f'path "{path}" {{\n  capabilities = ["{capability}"]\n}}\n' for path, capability in rules)


def kv_data_path(mount: str, name: str) -> str:
    """Where a KV v2 secret's current (or `?version=`) data is read."""
    return f"{mount}/data/{name}"


def kv_metadata_path(mount: str, name: str) -> str:
    """Where a KV v2 secret's versions are listed and destroyed."""
    return f"{mount}/metadata/{name}"


def migration_policy(stage: str, kv_mount: str, kv_name: str, db_mount: str, role: str) -> str:
    """An app's policy at each stage of its move from a KV password to dynamic credentials: `static`
    reads only its KV secret (its current version); `dual` also its creds path (as `client_policy`);
    `dynamic` its creds path only."""
    kv = [(kv_data_path(kv_mount, kv_name), "read")]
    if stage == "static":
        return render_policy([*kv, *_OWN_TOKEN])
    dynamic = client_policy(db_mount, role)
    return dynamic + "\n" + render_policy(kv) if stage == "dual" else dynamic
