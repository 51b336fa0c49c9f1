"""An AppRole login for one policy: the role, and a secret_id renewed before it expires.

Used by the components that give someone (a client, the database) a Vault
login; the resources are children of the caller's component.
"""

from dataclasses import dataclass

import pulumi
import pulumi_vault as vault

from components.vault.rotation import Rotation
from components.grants import MAX_SECRET_ID_TTL


@dataclass(frozen=True)
class AppRoleLogin:
    role_id: pulumi.Output[str]
    #: Secret.
    secret_id: pulumi.Output[str]


def approle_login(
    name: str, parent: pulumi.Resource, approle_mount: pulumi.Input[str], role_name: str,
    policy: vault.Policy | None, policy_name: str, token_ttl: int, token_max_ttl: int, secret_id_ttl: int,
    depends_on: list[pulumi.Resource], secret_role_id: bool = False,
) -> AppRoleLogin:
    """The role `role_name` with only `policy` (no `default` policy), bounded token lifetimes, and a
    secret_id that lives secret_id_ttl and is replaced at the first `up` after half of that.

    policy_name is the policy's own name (known at a first preview, so the policy gate judges it);
    policy None: one the caller does not make (the role is made without waiting for it).
    secret_role_id: the role_id is kept secret in the state too, not only the secret_id.
    """
    if not 0 < token_ttl <= token_max_ttl:
        raise ValueError(f"{name}: token_ttl must be positive and at most token_max_ttl")
    if not 0 < secret_id_ttl <= MAX_SECRET_ID_TTL:
        raise ValueError(f"{name}: secret_id_ttl must be positive and at most {MAX_SECRET_ID_TTL}s")
    role = vault.approle.AuthBackendRole(
        f"{name}-approle", backend=approle_mount, role_name=role_name, token_policies=[policy_name],
        token_no_default_policy=True, token_ttl=token_ttl, token_max_ttl=token_max_ttl,
        secret_id_ttl=secret_id_ttl, token_type="service",
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[*depends_on, *([policy] if policy else [])],
                                    additional_secret_outputs=["role_id"] if secret_role_id else None),
    )
    # A stack brought up at least every half lifetime always exports a secret_id that works.
    rotation = Rotation(f"{name}-secret-id-rotation", rotate_after=secret_id_ttl // 2,
                        opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on))
    secret_id = vault.approle.AuthBackendRoleSecretId(
        f"{name}-secret-id", backend=approle_mount, role_name=role.role_name,
        # Set, though the role has the same: the provider reads it back, and left unset it plans a
        # replacement on every preview.
        ttl=secret_id_ttl,
        opts=pulumi.ResourceOptions(parent=parent, additional_secret_outputs=["secret_id"], replace_with=[rotation]),
    )
    return AppRoleLogin(role.role_id, pulumi.Output.secret(secret_id.secret_id))
