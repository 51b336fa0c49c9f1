"""A Transit key for CockroachDB's encryption-at-rest store key, usable by the database's
own AppRole role and nothing else.

    store = StoreKeyTransit("crdb-store", StoreKeyTransitArgs(), opts=vault_opts)
    store.role_id, store.secret_id (secret): the node's login
    the node: transit/datakey/wrapped/<key> once (the store key, wrapped), transit/decrypt/<key> at each start

The key never leaves Vault: the node keeps only a data key wrapped by it, and
unwraps it through Vault when it starts. Rotating the Transit key
(`transit/keys/<key>/rotate`) re-wraps nothing by itself; `min_decryption_version`
stays at 1 so older wrapped keys still open.
"""

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_vault as vault

from components.vault.approle_login import approle_login
from components.options import inherited_depends_on


def store_key_policy(mount: str, key: str) -> str:
    """The database's role: make a wrapped data key and unwrap it with this key; nothing else."""
    rules = [(f"{mount}/datakey/wrapped/{key}", "update"), (f"{mount}/decrypt/{key}", "update")]
    return "\n".join(f'path "{path}" {{\n  capabilities = ["{capability}"]\n}}\n' for path, capability in rules)


@dataclass(frozen=True)
class StoreKeyTransitArgs:
    mount_path: str = "transit-db"
    key_name: str = "cockroach-store"
    #: The AppRole mount the database's role lives on.
    approle_mount: pulumi.Input[str] = "approle"
    role_name: str = "cockroach-node"
    token_ttl: int = 15 * 60
    token_max_ttl: int = 60 * 60
    secret_id_ttl: int = 24 * 3600


class StoreKeyTransit(pulumi.ComponentResource):
    """A Transit mount and key, the policy that may use it, and the database's AppRole role."""

    key_name: pulumi.Output[str]
    policy_name: pulumi.Output[str]
    role_id: pulumi.Output[str]
    secret_id: pulumi.Output[str]

    def __init__(self, name: str, args: StoreKeyTransitArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:vault:StoreKeyTransit", name, None, opts)
        after = inherited_depends_on(opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=after)
        mount = vault.Mount(f"{name}-mount", path=args.mount_path, type="transit",
                            description="The database's store key", opts=child)
        key = vault.transit.SecretBackendKey(
            f"{name}-key", backend=args.mount_path, name=args.key_name, type="aes256-gcm96",
            exportable=False, allow_plaintext_backup=False, deletion_allowed=True,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[mount])),
        )
        policy_name = f"store-key-{args.role_name}"
        policy = vault.Policy(f"{name}-policy", name=policy_name,
                              policy=store_key_policy(args.mount_path, args.key_name), opts=child)
        login = approle_login(name, self, args.approle_mount, args.role_name, policy, policy_name,
                              args.token_ttl, args.token_max_ttl, args.secret_id_ttl, [*after, key])
        self.key_name = key.name
        self.policy_name = policy.name
        self.role_id = login.role_id
        self.secret_id = login.secret_id
        self.register_outputs({"key_name": self.key_name, "policy_name": self.policy_name,
                               "role_id": self.role_id, "secret_id": self.secret_id})
