"""What every target gives the root program: its Vault server, its database, and the Vault provider
on that Vault (`Servers`), made by its module's `servers(config)` (stacks/targets.py)."""

import dataclasses

import pulumi
import pulumi_vault as vault

from components.database_component import DatabaseComponent
from components.servers.openbao import serving_address
from components.vault_component import VaultComponent

#: Where the clients log in, unless the stack's vault_prefix names it otherwise (config.vault.names).
APPROLE_MOUNT = "approle"


@dataclasses.dataclass(frozen=True)
class Servers:
    """What a target runs: Vault, the database, the Vault provider on that Vault (None where the stack
    does not reach it), and on the kubernetes target the options that put a resource in the stack's
    namespace (the in-cluster checks run there)."""

    vault: VaultComponent
    database: DatabaseComponent
    vault_provider: vault.Provider | None
    in_cluster: pulumi.ResourceOptions | None = None


def vault_provider_on(vault_server: VaultComponent) -> vault.Provider:
    """The Vault provider on the stack's own (initialised, unsealed) server; on a cluster, through the
    node that serves now (`serving_address`: the active one, else a standby, which forwards); in the
    server's namespace when it names one (the external target's vault_namespace), else in the root
    namespace, no namespace header sent."""
    address = pulumi.Output.all(vault_server.addresses, vault_server.ca_file).apply(lambda a: serving_address(*a))
    namespace = getattr(vault_server, "namespace", "")
    return vault.Provider(
        "vault", address=address, token=vault_server.admin_token, ca_cert_file=vault_server.ca_file,
        **({"namespace": namespace} if namespace else {}),
        # The admin token itself: no child token per run to create, expire and audit.
        skip_child_token=True,
        # Configured once Vault runs and is unsealed (after a machine restart too).
        opts=pulumi.ResourceOptions(depends_on=[vault_server]),
    )
