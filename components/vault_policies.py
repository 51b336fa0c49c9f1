"""Vault policy documents, as pure functions."""

import json


#: A token may look up, renew and revoke itself.
_OWN_TOKEN = (("auth/token/lookup-self", "read"), ("auth/token/renew-self", "update"),
              ("auth/token/revoke-self", "update"))


def creds_path(mount: str, role: str) -> str:
    """Where a dynamic role's credentials are issued."""
    return f"{mount}/creds/{role}"


def client_policy(mount: str, role: str) -> str:
    """Least privilege for one client: read its own creds path, renew and revoke only its own leases,
    look up, renew and revoke its own token; nothing else.

    Its login gives no `default` policy (`token_no_default_policy`): that one
    lets a token renew any lease whose id it knows. Renewal and revocation are
    granted in both forms the standard clients use, each scoped to this creds
    path: the lease id in the path (`sys/leases/renew/<lease id>`), and in the
    body (`sys/leases/renew` with `lease_id`, as the CLI's `lease renew`,
    OpenBao's agent and hvac's `sys.renew_lease` send it), where
    `allowed_parameters` admits only lease ids under this creds path.
    """
    creds = creds_path(mount, role)
    return render_policy([(creds, "read"), *_lease_rules(creds), *_OWN_TOKEN])


def _lease_rules(creds_prefix: str) -> list[tuple]:
    """Renew and revoke the leases under creds_prefix only: the lease id in the path, or in the body."""
    own_lease = {"lease_id": [f"{creds_prefix}/*"]}
    return [
        (f"sys/leases/renew/{creds_prefix}/*", "update"),
        (f"sys/leases/revoke/{creds_prefix}/*", "update"),
        ("sys/leases/renew", "update", {**own_lease, "increment": []}),
        ("sys/leases/revoke", "update", own_lease),
    ]


def team_client_policy(mount: str) -> str:
    """A team's apps: `client_policy` for every role of the team's own mount (the team writes its
    roles; the platform writes this policy)."""
    creds = f"{mount}/creds"
    return render_policy([(f"{creds}/*", "read"), *_lease_rules(creds), *_OWN_TOKEN])


def team_policy(mount: str, approle_mount: str, approle_role_prefix: str, client_policy_name: str) -> str:
    """What a team's own credential may do: write, read, list and delete the dynamic roles of its mount
    (never its `config/` connection), read their credentials (and renew and revoke those leases), and
    write AppRole roles named `<approle_role_prefix>*` whose tokens carry `client_policy_name` and
    nothing else, their role ids and secret ids; look up and renew its own token.

    No policy of its own to write: a policy's content cannot be bounded by a policy, so the platform
    writes the team's client policy. `allowed_parameters` pins `token_policies` to it (as a list, as
    pulumi-vault and the CLI send it, or as one name) and `token_no_default_policy` to true (the
    `default` policy renews any lease whose id a token knows); `policies`, the deprecated alias of
    `token_policies`, is refused. Any other parameter is free.
    """
    everything = ["create", "read", "update", "delete", "list"]
    roles = {"*": [], "token_policies": [[client_policy_name], client_policy_name],
             "token_no_default_policy": [True, "true"]}
    return render_policy([
        (f"{mount}/roles", "list"),
        (f"{mount}/roles/*", everything),
        (f"{mount}/creds/*", "read"),
        *_lease_rules(f"{mount}/creds"),
        # Said, though nothing above grants it: the connection (its user, its URL) is the platform's.
        (f"{mount}/config/*", "deny"),
        (f"auth/{approle_mount}/role/{approle_role_prefix}*", everything, roles, {"policies": []}),
        ("auth/token/lookup-self", "read"), ("auth/token/renew-self", "update"),
    ])


def render_policy(rules) -> str:
    """A policy document from (path, capabilities) pairs (one capability, or a list), or (path,
    capabilities, allowed_parameters[, denied_parameters]): parameter -> the values it may take (or
    may not; [] for any)."""
    def parameters(kind: str, given: dict | None) -> str:
        if not given:
            return ""
        return f"  {kind} = {{\n" + "".join(
            f'    "{name}" = [{", ".join(json.dumps(v) for v in values)}]\n' for name, values in given.items()) + "  }\n"

    def block(path: str, capabilities: str | list[str], allowed: dict | None = None,
              denied: dict | None = None) -> str:
        listed = ", ".join(json.dumps(c) for c in ([capabilities] if isinstance(capabilities, str) else capabilities))
        return (f'path "{path}" {{\n  capabilities = [{listed}]\n'
                f'{parameters("allowed_parameters", allowed)}{parameters("denied_parameters", denied)}}}\n')

    return "\n".join(block(*rule) for rule in rules)


def stack_admin_policy(mounts: tuple[str, ...] = ("database",), auth_mounts: tuple[str, ...] = ("approle",)) -> str:
    """What the stack itself may do in a Vault that keeps no root token: mount its engines and auth
    methods and configure them, write policies, tune raft's autopilot and read its peers, renew its
    own token, read the metrics, mint and revoke tokens of its token roles (the in-cluster checks'), list, look up and revoke
    the leases of its mounts (`make down`), and start the authenticated root-token generation that a
    quorum of the recovery keys completes (break glass). Nothing of sys/ beyond that: no seal, no
    audit devices, no other mounts' secrets."""
    everything = ["create", "read", "update", "delete", "list"]
    return render_policy([
        *((path, capabilities) for path, capabilities in (
            ("sys/mounts", ["read"]), ("sys/mounts/*", [*everything, "sudo"]),
            ("sys/auth", ["read"]), ("sys/auth/*", [*everything, "sudo"]),
            ("sys/policies/acl/*", everything), ("sys/policy/*", everything),
            ("sys/storage/raft/autopilot/configuration", ["read", "update", "sudo"]),
            ("sys/storage/raft/configuration", ["read", "sudo"]),
            # The checks report the metrics an operator alerts on.
            ("sys/metrics", ["read"]),
            # A rolling restart moves the active node off the pod it restarts last.
            ("sys/step-down", ["update", "sudo"]),
            ("auth/token/roles/*", everything), ("auth/token/create/*", ["update"]), ("auth/token/revoke", ["update"]),
            ("sys/leases/lookup/*", ["list", "sudo"]), ("sys/leases/lookup", ["update"]),
            ("sys/leases/revoke-prefix/*", ["update", "sudo"]),
            ("sys/leases/revoke/*", ["update"]),
            # Break glass: with a quorum of the recovery keys (and only then), a root token.
            ("sys/generate-root-token/attempt", ["read", "update", "delete"]),
            ("sys/generate-root-token/update", ["update"]),
        )),
        *((f"{mount}/*", [*everything, "sudo"]) for mount in mounts),
        *((f"auth/{mount}/*", everything) for mount in auth_mounts),
        *_OWN_TOKEN,
    ])


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
