"""What every Vault server component gives, whatever runs the server (local processes, a container, pods
of a cluster, or someone else): one interface for the Vault provider, the secrets engine and the
post-deploy checks."""

from typing import Any

import pulumi

from components.options import register_outputs


class VaultComponent(pulumi.ComponentResource):
    """An initialised, unsealed Vault's outputs. `address` is where clients reach it; `addresses` every
    node's address (one, unless it is a cluster whose nodes each serve). `admin_token` is secret; `ca_pem` verifies its
    listener; `ca_file` is that CA as a file on this host (the Vault provider takes a file);
    `database_ca_file` is the database's CA as a file where Vault runs (its connection's
    `sslrootcert`); `audit_log` is the file audit device's path where Vault runs."""

    address: pulumi.Output[str]
    addresses: pulumi.Output[list]
    ca_pem: pulumi.Output[str]
    ca_file: pulumi.Output[str]
    database_ca_file: pulumi.Output[str]
    admin_token: pulumi.Output[str]
    audit_log: pulumi.Output[str]

    def _register_vault(
        self, *, address: pulumi.Input[str], ca_pem: pulumi.Input[str], ca_file: pulumi.Input[str],
        database_ca_file: pulumi.Input[str], admin_token: pulumi.Input[str], audit_log: pulumi.Input[str],
        addresses: pulumi.Input[list] | None = None, **extra: pulumi.Output[Any],
    ) -> None:
        """Sets the outputs (and any `extra` ones) and registers them; `addresses` defaults to [address]."""
        outputs = {
            "address": pulumi.Output.from_input(address),
            "addresses": pulumi.Output.from_input(addresses if addresses is not None else [address]),
            "ca_pem": pulumi.Output.from_input(ca_pem),
            "ca_file": pulumi.Output.from_input(ca_file),
            "database_ca_file": pulumi.Output.from_input(database_ca_file),
            "admin_token": pulumi.Output.secret(admin_token), "audit_log": pulumi.Output.from_input(audit_log),
            **extra,
        }
        register_outputs(self, outputs)
