"""The CrossGuard policies, one per rule of `policies/rules/`, each filtered to the resource type
it judges, with its enforcement level and config schema.

Levels: whatever weakens TLS, grants more than the spec, or leaves a credential
unbounded is MANDATORY (it fails the preview); hardening a platform team may
reach another way is ADVISORY (reported only). Each schema holds its policy's
defaults, the only place they are written; a stack's generated config
(`stacks/config.py: policy_pack_config`) sets them per environment.
"""

from typing import Callable

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from components.defaults import DB_ADMIN
from policies.rules import (
    client_access,
    common,
    database_engine,
    docker_containers,
    kubernetes_workloads,
    vault_servers,
)

MANDATORY, ADVISORY = EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY

DAY = 86400
TTL_CAP = PolicyConfigSchema(properties={
    "maxTtlCapSeconds": {"type": "integer", "minimum": 1, "default": DAY,
                         "description": "No dynamic credential of this environment may live longer."},
})
ADMIN_ROLES = PolicyConfigSchema(properties={
    "adminRoles": {"type": "array", "items": {"type": "string"}, "default": [DB_ADMIN],
                   "description": "The database roles Vault connects as: no dynamic user may join them."},
})
ROTATION_CAP = PolicyConfigSchema(properties={
    "maxRotationPeriodSeconds": {"type": "integer", "minimum": 1, "default": 30 * DAY,
                                 "description": "A static role's password is rotated at least this often."},
})
APPROLE_CAPS = PolicyConfigSchema(properties={
    "maxTokenTtlSeconds": {"type": "integer", "minimum": 1, "default": DAY,
                           "description": "No AppRole token may be renewed past this."},
    "maxSecretIdTtlSeconds": {"type": "integer", "minimum": 1, "default": 30 * DAY,
                              "description": "No AppRole secret_id may live longer."},
})
ROOT_ROTATION = PolicyConfigSchema(properties={
    "requireRotationSchedule": {"type": "boolean", "default": False,
                                "description": "Every connection's root is rotated again on a schedule (a "
                                               "Rotation replacing its rotate-root endpoint; a production "
                                               "stack: true)."},
    "maxRootRotationSeconds": {"type": "integer", "minimum": 1, "default": 30 * DAY,
                               "description": "A scheduled root rotation comes at least this often."},
})
K8S_AUTH_CAPS = PolicyConfigSchema(properties={
    "maxTokenTtlSeconds": {"type": "integer", "minimum": 1, "default": DAY,
                           "description": "No Kubernetes auth token may be renewed past this."},
})

SUPERUSERS = PolicyConfigSchema(properties={
    "superuserNames": {"type": "array", "items": {"type": "string"}, "default": ["postgres", "root"],
                       "description": "The database's superusers (PostgreSQL's postgres, CockroachDB's root, and any "
                                      "other a platform names): no connection may log in as one."},
})

VAULT_NODES = PolicyConfigSchema(properties={
    "minNodes": {"type": "integer", "minimum": 1, "default": 1,
                 "description": "OpenBao runs at least this many nodes (a production stack: 3)."},
    "requireAutoUnseal": {"type": "boolean", "default": False,
                          "description": "Every OpenBao node unseals itself (a production stack: true)."},
})
NO_ROOT_TOKEN = PolicyConfigSchema(properties={
    "requireNoRootToken": {"type": "boolean", "default": False,
                           "description": "The stack keeps no root token (a production stack: true)."},
})
SPREAD = PolicyConfigSchema(properties={
    "requireSpread": {"type": "boolean", "default": False,
                      "description": "OpenBao's pods on distinct nodes, one down at a time (a production stack: true)."},
})
HOST_PATHS = PolicyConfigSchema(properties={
    "allowedHostPaths": {"type": "array", "items": {"type": "string"}, "default": [],
                         "description": "Host folders a container may mount, or a node volume may live in (the stack's data folder)."},
})


def defaults(schema: PolicyConfigSchema | None) -> dict:
    """A schema's defaults: the config a policy gets when a stack sets none."""
    return {k: v["default"] for k, v in (schema.properties if schema else {}).items() if "default" in v}


def _for(resource_type: str | tuple[str, ...], rule: Callable, schema: PolicyConfigSchema | None) -> Callable:
    """A validator that applies `rule` to resources of one type (or of these types) only, with the
    schema's defaults under the config it was given."""
    types = (resource_type,) if isinstance(resource_type, str) else resource_type

    def validate(args: ResourceValidationArgs, report_violation) -> None:
        if args.resource_type in types:
            rule(args.props, {**defaults(schema), **(args.get_config() or {})},
                 lambda message: report_violation(f"{args.name}: {message}"))
    return validate


def _policy(name: str, level: EnforcementLevel, description: str, resource_type: str | tuple[str, ...], rule: Callable,
            schema: PolicyConfigSchema | None = None) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(name=name, description=description, enforcement_level=level,
                                    validate=_for(resource_type, rule, schema), config_schema=schema)


def _stack_policy(name: str, level: EnforcementLevel, description: str, rule: Callable,
                  schema: PolicyConfigSchema | None = None) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation) -> None:
        rule(args.resources, {**defaults(schema), **(args.get_config() or {})}, report_violation)
    return StackValidationPolicy(name=name, description=description, enforcement_level=level, validate=validate,
                                 config_schema=schema)


# In the order they have always run in, not grouped by domain, so that the gate's output stays as it was.
POLICIES = [
    _policy("database-connection-allowed-roles", MANDATORY,
            "List exactly the roles each database connection serves in allowed_roles, no '*'.",
            common.CONNECTION, database_engine.connection_allowed_roles),
    _policy("database-connection-templated-credentials", MANDATORY,
            "Write connection URLs with {{username}}:{{password}} and pass the password in its own "
            "(write-only) field, never in the URL.",
            common.CONNECTION, database_engine.connection_templated_credentials),
    _policy("database-connection-verify-full", MANDATORY,
            "Set sslmode=verify-full and a CA (sslrootcert) on every database connection.",
            common.CONNECTION, database_engine.connection_verify_full),
    _policy("database-connection-verified", ADVISORY,
            "Let Vault try each database connection when it is written (verify_connection, on by default), so "
            "a wrong host, CA or password fails the up, not a client's first request. Advisory: a platform "
            "that configures Vault before its database is reachable (made in a later stage, or its network "
            "opened after) sets it off knowingly.",
            common.CONNECTION, database_engine.connection_verified),
    _policy("database-connection-not-superuser", MANDATORY,
            "Connect as an admin role with CREATEROLE that owns what it grants, never as the database's "
            "superuser (superuserNames: postgres, root). A platform whose only admin is a superuser (a "
            "throwaway sandbox) lowers this policy's level in its own gate config, knowingly.",
            common.CONNECTION, database_engine.connection_not_superuser, SUPERUSERS),
    _policy("dynamic-role-ttls", MANDATORY,
            "Set default_ttl and max_ttl on every dynamic role, default_ttl <= max_ttl <= the environment's cap.",
            common.ROLE, database_engine.role_ttls, TTL_CAP),
    _policy("dynamic-role-valid-until", MANDATORY,
            "End the creation SQL's user at the lease's end: VALID UNTIL '{{expiration}}'.",
            common.ROLE, database_engine.role_valid_until),
    _policy("dynamic-role-least-privilege", MANDATORY,
            "Grant dynamic users table privileges through a group role: no SUPERUSER, CREATEROLE, CREATEDB, "
            "BYPASSRLS, REPLICATION or ALL, no predefined or admin role.",
            common.ROLE, database_engine.role_least_privilege, ADMIN_ROLES),
    _policy("dynamic-role-revocation", MANDATORY,
            "Give every dynamic role revocation SQL that drops its user (DROP ROLE or DROP USER of {{name}}): "
            "revoking its privileges alone leaves a role behind per lease.",
            common.ROLE, database_engine.role_revocation),
    _policy("dynamic-role-connection-limit", ADVISORY,
            "Cap a dynamic user's sessions with CONNECTION LIMIT in its creation SQL.",
            common.ROLE, database_engine.role_connection_limit),
    _policy("static-role-rotation", MANDATORY,
            "Rotate every static role's password at least as often as the environment's cap.",
            common.STATIC_ROLE, database_engine.static_role_rotation, ROTATION_CAP),
    _policy("client-policy-least-privilege", MANDATORY,
            "Give each client a policy on its own creds path and its own leases only: no glob over creds "
            "paths, no sudo, no sys/ beyond lease renew and revoke, those only for the creds path it reads, "
            "never by prefix.",
            common.POLICY, client_access.client_policy_least_privilege),
    _policy("client-policy-engine-untouched", MANDATORY,
            "Let no client change a secrets engine: no write to a mount's config, roles, static-roles, "
            "rotate-root, rotate-role, reset or reload (rotate-root alone lets any client cut Vault off "
            "from the database).", common.POLICY, client_access.client_policy_engine_untouched),
    _policy("team-policy-bounded", MANDATORY,
            "Let a team's policy (team-<team>) reach its own mount's roles and credentials, AppRole roles "
            "team-<team>-* whose tokens carry its client policy only (token_policies pinned, 'policies' "
            "denied, no default policy) and its own token: no policy of its own, nothing of sys/ beyond "
            "its mount's leases, no sudo.", common.POLICY, client_access.team_policy_bounded),
    _policy("approle-bounded", MANDATORY,
            "Set token_ttl, token_max_ttl and secret_id_ttl on every AppRole role, within the caps; never "
            "the root policy, nor the default one (it lets a token renew any lease whose id it knows).",
            common.APPROLE_ROLE, client_access.approle_bounded, APPROLE_CAPS),
    _policy("approle-secret-id-required", MANDATORY,
            "Require a secret_id on every AppRole role (bind_secret_id true): the role_id is no secret. "
            "CIDR bounds, where a platform adds them, narrow the login but replace nothing.",
            common.APPROLE_ROLE, client_access.approle_secret_id_required),
    _policy("kubernetes-auth-bounded", MANDATORY,
            "Bind every Kubernetes auth role to named service accounts in named namespaces (no '*', no "
            "namespace selector), with an audience, token_ttl and token_max_ttl within the cap, no default "
            "policy, never the root policy.",
            common.K8S_AUTH_ROLE, client_access.kubernetes_auth_bounded, K8S_AUTH_CAPS),
    _policy("vault-server-hardened", MANDATORY,
            "Give our OpenBao servers a TLS certificate and key.",
            common.OPENBAO_SERVER, vault_servers.vault_server_hardened),
    _stack_policy("root-credentials-rotated", MANDATORY,
                  "Rotate every connection's root credentials (a generic.Endpoint at <mount>/rotate-root/<name>), "
                  "so the bootstrap password dies, and again on a schedule within the cap (a Rotation the "
                  "endpoint is replaced with, naming it in rotates; required in production).",
                  database_engine.root_rotation, ROOT_ROTATION),
    _stack_policy("static-role-not-admin", MANDATORY,
                  "Give no static role a user a connection logs in as, an admin role or the database's "
                  "superuser: Vault would rotate the connection's own password behind its back, and whoever "
                  "reads the role's static-creds would hold the admin.",
                  database_engine.static_role_not_admin,
                  PolicyConfigSchema(properties={**ADMIN_ROLES.properties, **SUPERUSERS.properties})),
    _stack_policy("kv-database-password-during-migration", ADVISORY,
                  "Finish a migration from a KV password: at 'dual' the app still reads a static password "
                  "beside its dynamic role.", database_engine.kv_password_during_migration),
    _stack_policy("kv-database-password-after-migration", MANDATORY,
                  "Keep no database password in KV v2 beside a dynamic role for that database, except at a "
                  "migration's 'dual' stage.", database_engine.kv_password_after_migration),
    _stack_policy("vault-highly-available", MANDATORY,
                  "Run at least the environment's number of OpenBao nodes, each unsealing itself where it asks "
                  "for an auto-unseal (production: 3 nodes and the static seal).",
                  vault_servers.vault_highly_available, VAULT_NODES),
    _stack_policy("vault-no-root-token", MANDATORY,
                  "Keep no root token where the environment asks for none: hand over to the stack's admin policy "
                  "and revoke it (production).", vault_servers.vault_no_root_token, NO_ROOT_TOKEN),
    _stack_policy("kubernetes-vault-spread", MANDATORY,
                  "Spread OpenBao's pods over nodes (required anti-affinity) and let a PodDisruptionBudget take "
                  "at most one down where the environment asks (production).",
                  kubernetes_workloads.vault_spread, SPREAD),
    _policy("kubernetes-workload-hardened", MANDATORY,
            "Run StatefulSets and Deployments non-root, read-only, without capabilities, with requests and "
            "limits, in their own namespaces (no host network, PID or IPC), without an API token (OpenBao's "
            "pods excepted: their own, projected read-only at the standard path, for Kubernetes auth).",
            (common.STATEFULSET, common.DEPLOYMENT), kubernetes_workloads.workload_hardened),
    _policy("docker-container-hardened", MANDATORY,
            "Run containers unprivileged, every capability dropped (CHOWN, FOWNER, SETUID, SETGID added back "
            "at most), no-new-privileges, no host namespace but the network, host paths only under the "
            "stack's data folder.", common.CONTAINER, docker_containers.container_hardened, HOST_PATHS),
    _stack_policy("docker-images-built-here", MANDATORY,
                  "Run only images the stack builds itself (docker.Image, never pushed); pull none.",
                  docker_containers.images_built_here),
    _stack_policy("kubernetes-database-isolated", ADVISORY,
                  "Deny ingress in the database's namespace by default and open it to named sources only.",
                  kubernetes_workloads.database_isolated),
]
