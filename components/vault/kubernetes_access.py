"""Kubernetes auth: a client's pods log in with their service account's token.

    access = KubernetesAccess("kubernetes", KubernetesAccessArgs(
        kubernetes_host="https://kubernetes.default.svc", audience="vault.dbcreds.svc",
        roles=(KubernetesRoleArgs(client="team-app", policy=client.policy_name, service_accounts=("team-app",),
                                  namespaces=("team-app",), token_ttl=900, token_max_ttl=7200),)),
        opts=pulumi.ResourceOptions(providers=[vault_provider]))
    access.roles["team-app"]   # {"mount": "kubernetes", "role": "team-app", "audience": "vault.dbcreds.svc",
                               #  "service_accounts": ["team-app"], "namespaces": ["team-app"]}

The method is enabled at `mount` and configured against the cluster OpenBao runs in: the API server at
`kubernetes_host`, as OpenBao's pods reach it, and no CA or reviewer token in Vault's config. With
`disable_local_ca_jwt` false OpenBao takes both from the standard path of its own pods (their
service account's token and the cluster's CA, projected there by
`components.kubernetes.manifests.api_token_volume`), and rereads the token as kubelet replaces it:
the reviewer's token is OpenBao's own, bound to `system:auth-delegator`, and never leaves its pods.

One role per client, named after it: bound to exactly its service accounts and namespaces, to
tokens whose audience is `audience` (a pod's token for anything else is refused), its own policy
only (no `default` policy), and its token's TTLs: token_max_ttl at least the role's max_ttl
(`components.grants.validate_client_spec`), since a lease dies with the token that took it.
"""

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_vault as vault

from components.options import inherited_depends_on

#: Where the method is mounted.
KUBERNETES_MOUNT = "kubernetes"
#: The API server as a pod reaches it.
IN_CLUSTER_API = "https://kubernetes.default.svc"


@dataclass(frozen=True)
class KubernetesRoleArgs:
    #: The client whose pods log in; the role is named after it.
    client: str
    #: The client's policy (`ClientAccess.policy_name`): the only one its tokens carry.
    policy: pulumi.Input[str]
    service_accounts: tuple[str, ...]
    namespaces: tuple[str, ...]
    token_ttl: int
    token_max_ttl: int


@dataclass(frozen=True)
class KubernetesAccessArgs:
    roles: tuple[KubernetesRoleArgs, ...]
    #: The audience a pod's projected token must carry (the platform's Vault, by its Service's name).
    audience: str
    kubernetes_host: str = IN_CLUSTER_API
    mount: str = KUBERNETES_MOUNT


class KubernetesAccess(pulumi.ComponentResource):
    """The `kubernetes` auth method and one role per client that logs in with it. Outputs: `mount`, and
    `roles` (client -> {mount, role, audience, service_accounts, namespaces}: what a workload's agent
    logs in with, and as whom)."""

    mount: pulumi.Output[str]
    roles: pulumi.Output[dict]

    def __init__(self, name: str, args: KubernetesAccessArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:vault:KubernetesAccess", name, None, opts)
        after = inherited_depends_on(opts)
        backend = vault.AuthBackend(
            f"{name}-auth", type="kubernetes", path=args.mount,
            description="Kubernetes logins of the database clients' pods",
            opts=pulumi.ResourceOptions(parent=self, depends_on=after))
        config = vault.kubernetes.AuthBackendConfig(
            f"{name}-config", backend=backend.path, kubernetes_host=args.kubernetes_host,
            # The CA and the reviewer's token from OpenBao's own pod (see the module's docstring).
            disable_local_ca_jwt=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[backend]))
        for role in args.roles:
            vault.kubernetes.AuthBackendRole(
                f"{name}-{role.client}", backend=backend.path, role_name=role.client,
                bound_service_account_names=list(role.service_accounts),
                bound_service_account_namespaces=list(role.namespaces), audience=args.audience,
                token_policies=[role.policy], token_no_default_policy=True,
                token_ttl=role.token_ttl, token_max_ttl=role.token_max_ttl,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[config]))
        self.mount = backend.path
        self.roles = backend.path.apply(lambda mount: {
            role.client: {"mount": mount, "role": role.client, "audience": args.audience,
                          "service_accounts": list(role.service_accounts), "namespaces": list(role.namespaces)}
            for role in args.roles})
        self.register_outputs({"mount": self.mount, "roles": self.roles})
