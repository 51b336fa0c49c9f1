"""The CrossGuard policies, one per rule, each filtered to the resource type it judges."""

from typing import Callable

from pulumi_policy import (
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies import rules

TTL_CAPS = PolicyConfigSchema(properties={
    "maxTtlCapSeconds": {"type": "integer", "default": 86400},
    "adminRoles": {"type": "array", "items": {"type": "string"}, "default": ["dbcreds_admin"]},
})


def _for(resource_type: str, rule: Callable) -> Callable:
    """A validator that applies `rule` to resources of one type only."""
    def validate(args: ResourceValidationArgs, report_violation) -> None:
        if args.resource_type == resource_type:
            rule(args.props, args.get_config(), lambda message: report_violation(f"{args.name}: {message}"))
    return validate


def _policy(name: str, description: str, resource_type: str, rule: Callable,
            schema: PolicyConfigSchema | None = None) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(name=name, description=description, validate=_for(resource_type, rule),
                                    config_schema=schema)


def _root_rotation(args: StackValidationArgs, report_violation) -> None:
    rules.root_rotation(args.resources, args.get_config(), report_violation)


def _database_isolated(args: StackValidationArgs, report_violation) -> None:
    rules.database_isolated(args.resources, args.get_config(), report_violation)


POLICIES = [
    _policy("database-connection-allowed-roles", "Connections list exactly their roles, no wildcard.",
            rules.CONNECTION, rules.connection_allowed_roles),
    _policy("database-connection-templated-credentials",
            "Connection URLs use {{username}}/{{password}} and hold no literal password.",
            rules.CONNECTION, rules.connection_templated_credentials),
    _policy("database-connection-verify-full", "Connections verify the server (sslmode=verify-full with a CA).",
            rules.CONNECTION, rules.connection_verify_full),
    _policy("dynamic-role-ttls", "Dynamic roles set default_ttl <= max_ttl <= the environment's cap.",
            rules.ROLE, rules.role_ttls, TTL_CAPS),
    _policy("dynamic-role-valid-until", "Creation SQL sets VALID UNTIL '{{expiration}}'.",
            rules.ROLE, rules.role_valid_until),
    _policy("dynamic-role-least-privilege",
            "Creation SQL grants no SUPERUSER, CREATEROLE, CREATEDB, BYPASSRLS, REPLICATION or ALL, "
            "and joins no predefined or admin role.", rules.ROLE, rules.role_least_privilege, TTL_CAPS),
    _policy("dynamic-role-revocation", "Dynamic roles have revocation SQL.", rules.ROLE, rules.role_revocation),
    _policy("static-role-rotation", "Static roles rotate within the environment's cap.",
            rules.STATIC_ROLE, rules.static_role_rotation,
            PolicyConfigSchema(properties={"maxRotationPeriodSeconds": {"type": "integer", "default": 2592000}})),
    _policy("client-policy-least-privilege",
            "Client policies: no glob over other creds paths, no sudo, no sys/ beyond leases, "
            "no writes to database config or roles.", rules.POLICY, rules.client_policy_least_privilege),
    _policy("approle-bounded", "AppRole tokens and secret_ids expire; no root policy.",
            rules.APPROLE_ROLE, rules.approle_bounded,
            PolicyConfigSchema(properties={"maxTokenTtlSeconds": {"type": "integer", "default": 86400},
                                           "maxSecretIdTtlSeconds": {"type": "integer", "default": 2592000}})),
    _policy("vault-server-hardened", "Vault servers from our components serve TLS and never run in dev mode.",
            "pulumi-python:dynamic:Resource", rules.vault_server_hardened),
    StackValidationPolicy(name="root-credentials-rotated",
                          description="Every database connection's root credentials are rotated.",
                          validate=_root_rotation),
    _policy("kubernetes-workload-hardened",
            "StatefulSets run non-root, read-only, without capabilities or API token, with requests and limits.",
            rules.STATEFULSET, rules.workload_hardened),
    StackValidationPolicy(name="kubernetes-database-isolated",
                          description="The database's namespace denies ingress; only named sources reach it.",
                          validate=_database_isolated),
]

