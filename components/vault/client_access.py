"""One client (team or app) of the database secrets engine: a policy, an AppRole role, its secret_id.

    approle = vault.AuthBackend("approle", type="approle")
    client = ClientAccess("reporting", ClientAccessArgs(
        role="reader", database_mount=engine.mount_path, approle_mount=approle.path))
    client.role_id, client.secret_id (secret), client.creds_path
"""

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_vault as vault

from components.vault.approle_login import approle_login
from components.options import inherited_depends_on
from components.vault_policies import client_policy, creds_path


@dataclass(frozen=True)
class ClientAccessArgs:
    #: The dynamic role (grant spec) this client reads credentials of.
    role: str
    database_mount: pulumi.Input[str]
    approle_mount: pulumi.Input[str]
    #: Bounded lifetimes: of the client's Vault token (its leases die with it), and of its secret_id.
    token_ttl: int = 15 * 60
    token_max_ttl: int = 60 * 60
    secret_id_ttl: int = 24 * 60 * 60
    #: Its policy's name; empty: `client-<name>` (a stack that shares its Vault with others gives one of
    #: its own, `<prefix>-client-<name>`).
    policy_name: str = ""
    #: A policy someone else wrote that the client's tokens carry instead of one of its own (a team's
    #: client policy, written by the platform: a team writes no policy).
    existing_policy: pulumi.Input[str] = ""


class ClientAccess(pulumi.ComponentResource):
    """A least-privilege client: it reads its own creds path, and renews and revokes its own leases.

    Its secret_id lives `secret_id_ttl` and is replaced at the first `up` after
    half of that.

    Its tokens carry only its own policy (no `default` policy: see
    `components.vault_policies.client_policy`). The role and its policy are
    named after the client (the policy as `policy_name` says, if given).
    """

    approle_mount: pulumi.Output[str]
    role_id: pulumi.Output[str]
    secret_id: pulumi.Output[str]
    creds_path: pulumi.Output[str]
    policy_name: pulumi.Output[str]

    def __init__(self, name: str, args: ClientAccessArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:vault:ClientAccess", name, None, opts)
        # Children wait for what the component waits for (the AppRole mount, say).
        after = inherited_depends_on(opts)
        mount = pulumi.Output.from_input(args.database_mount)
        if args.existing_policy and args.policy_name:
            raise ValueError(f"client {name}: give policy_name (a policy it writes) or existing_policy, not both")
        policy_name = args.existing_policy or args.policy_name or f"client-{name}"
        policy = None if args.existing_policy else vault.Policy(
            f"{name}-policy", name=policy_name, policy=mount.apply(lambda m: client_policy(m, args.role)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )
        login = approle_login(name, self, args.approle_mount, name, policy, policy_name, args.token_ttl,
                              args.token_max_ttl, args.secret_id_ttl, after)
        self.approle_mount = pulumi.Output.from_input(args.approle_mount)
        self.role_id = login.role_id
        self.secret_id = login.secret_id
        self.creds_path = mount.apply(lambda m: creds_path(m, args.role))
        self.policy_name = policy.name if policy else pulumi.Output.from_input(policy_name)
        self.register_outputs({
            "approle_mount": self.approle_mount, "role_id": self.role_id, "secret_id": self.secret_id,
            "creds_path": self.creds_path, "policy_name": self.policy_name,
        })
