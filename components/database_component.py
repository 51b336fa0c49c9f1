"""What every database component gives, whatever runs the database (a local process, CockroachDB,
Kubernetes): one interface for the secrets engine, the clients and the checks."""

from typing import Any

import pulumi
import pulumi_random as random

from components.options import register_outputs


class DatabaseComponent(pulumi.ComponentResource):
    """A database server component's outputs. `admin_bootstrap_password` is secret: Vault first
    connects with it and rotates it at once. `group_roles` maps each grant spec to its group role."""

    host: pulumi.Output[str]
    port: pulumi.Output[int]
    database: pulumi.Output[str]
    admin: pulumi.Output[str]
    admin_bootstrap_password: pulumi.Output[str]
    #: Changes whenever the bootstrap password does (a new server): Vault's connection is sent it again.
    admin_bootstrap_password_version: pulumi.Output[int]
    ca_pem: pulumi.Output[str]
    group_roles: pulumi.Output[dict]
    #: How the stack's own providers reach the server to make roles in it, as keywords of theirs
    #: (`components.servers.database_access.server_props`): a local server's data folder and port, or an
    #: external one's stack admin. None where the stack reaches no such role from this machine.
    stack_access: dict[str, Any] | None = None
    #: The role that owns what the stack makes in the database (grants, a team's functions).
    owner: pulumi.Input[str] | None = None

    def _register_database(
        self, *, host: pulumi.Input[str], port: pulumi.Input[int], database: pulumi.Input[str],
        admin: pulumi.Input[str], admin_bootstrap_password: pulumi.Input[str], ca_pem: pulumi.Input[str],
        group_roles: pulumi.Input[dict], admin_bootstrap_password_version: pulumi.Input[int] = 1,
        **extra: pulumi.Output[Any],
    ) -> None:
        """Sets the outputs (and any `extra` ones) and registers them."""
        outputs = {
            "host": pulumi.Output.from_input(host), "port": pulumi.Output.from_input(port),
            "database": pulumi.Output.from_input(database), "admin": pulumi.Output.from_input(admin),
            "admin_bootstrap_password": pulumi.Output.secret(admin_bootstrap_password),
            "admin_bootstrap_password_version": pulumi.Output.from_input(admin_bootstrap_password_version),
            "ca_pem": pulumi.Output.from_input(ca_pem), "group_roles": pulumi.Output.from_input(group_roles),
            **extra,
        }
        register_outputs(self, outputs)


def new_password(name: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    """A random password (secret), made once: 32 letters and digits, safe in SQL, URLs and shells."""
    return random.RandomPassword(name, length=32, special=False, opts=pulumi.ResourceOptions(parent=parent)).result
