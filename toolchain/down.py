"""`make down`: gives back every credential, proves none is left, then destroys the stack.

  python3 -m toolchain.down STACK

1. The stack must exist.
2. Every lease of the stack's database mount (its `database_mount` output), and of each team's
   mount (its `teams` output), is revoked (`sys/leases/revoke-prefix`):
   Vault runs each role's revocation SQL, which drops the user. Then Vault
   must list no lease under the mount. A dynamic user the database still has
   is one no lease held (Vault made it and went down before it recorded the
   lease): it is dropped with the same revocation SQL, and named. Then the
   database (asked as its superuser, or the external target's stack admin)
   must have no dynamic user.
3. `pulumi destroy`, then the stack is removed (its config file stays).
4. Nothing of the stack may be left (its target's `left_after_destroy`,
   stacks/targets.py): no server process of it; on the docker target, the
   stack's own Docker engine is stopped and its data root (images, containers,
   volumes) removed (an engine the stack did not start is left alone); on the
   kubernetes target, no namespace of the stack's, nor volume its claims had
   (the cluster itself stays: `make cluster-down`); on the external target, no
   role the stack made in the database (asked as the stack admin; the servers
   are their operators' and stay).

Anything left behind, or a step that cannot run, ends it with a message and
exit status 1.
"""

import sys
import tempfile
from pathlib import Path

import hvac
from pulumi import automation as auto

from components.kubernetes.port_forward import PortForwardError
from components.servers.openbao import serving_address
from stacks import dynamic_users, kubernetes_target, targets
from stacks import config as stack_settings
from stacks.config import StackConfig
from toolchain.env import ROOT, pulumi_env


class DownError(RuntimeError):
    pass


def say(message: str) -> None:
    print(f"[down] {message}", file=sys.stderr, flush=True)


def open_stack(name: str, env: dict[str, str], work_dir: Path = ROOT) -> auto.Stack:
    try:
        return auto.select_stack(
            stack_name=name, work_dir=str(work_dir),
            opts=auto.LocalWorkspaceOptions(env_vars=env, pulumi_command=auto.PulumiCommand(
                root=str(ROOT / ".tools"), skip_version_check=True)),
        )
    except auto.StackNotFoundError:
        raise DownError(f"stack {name!r} does not exist on this checkout's backend ({env['PULUMI_BACKEND_URL']}): "
                        "nothing to take down (make up creates it)") from None


def leases_left(vault: hvac.Client, mount: str) -> list[str]:
    """Lease ids Vault still holds under the mount's creds paths."""
    def listed(path: str) -> list[str]:
        response = vault.list(path)
        return response["data"]["keys"] if response else []

    prefix = f"sys/leases/lookup/{mount}/creds/"
    return [f"{mount}/creds/{role}{lease}" for role in listed(prefix) for lease in listed(prefix + role)]


def database_users(outputs: dict[str, auto.OutputValue], config: StackConfig
                   ) -> tuple[dynamic_users.ListUsers, dynamic_users.DropUsers]:
    """How to list the stack's dynamic database users, and to drop some, wherever its database runs (as
    its superuser, or the external target's stack admin)."""
    attribute = targets.of(config).DATABASE_LOCATION
    return dynamic_users.database_users(config, outputs[f"db_{attribute}"].value if attribute else "")


def revoke_everything(outputs: dict[str, auto.OutputValue], config: StackConfig) -> None:
    """Revokes every lease of the mount (and of each team's mount) and proves, in Vault and in the
    database, that none is left."""
    teams = outputs["teams"].value if "teams" in outputs else {}
    mounts = [outputs["database_mount"].value, *(team["database_mount"] for team in teams.values())]
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as ca:
        ca.write(outputs["vault_ca_pem"].value)
        ca.flush()
        # A cluster is reached through a node that serves (the active one, or a standby: it forwards).
        addresses = outputs["vault_addrs"].value if "vault_addrs" in outputs else [outputs["vault_addr"].value]
        vault = hvac.Client(url=serving_address(addresses, ca.name), token=outputs["vault_admin_token"].value,
                            verify=ca.name, timeout=300)
        # The stack's namespace (the external target's vault_namespace): its leases' paths are relative
        # to it. Without one, the root namespace, no header sent.
        namespace = getattr(config.target, "vault_namespace", "")
        in_namespace = hvac.Client(url=vault.url, token=vault.token, verify=ca.name, timeout=300,
                                   namespace=namespace) if namespace else vault
        try:
            sealed = vault.sys.is_sealed()
        except Exception as error:  # noqa: BLE001 - any failure to reach it is the finding
            raise DownError(f"Vault at {vault.url} does not answer ({type(error).__name__}): its leases cannot "
                            "be revoked; run make up first (it restarts and unseals Vault)") from None
        if sealed:
            raise DownError(f"Vault at {vault.url} is sealed: run make up first (it unseals Vault)")
        after = []
        for mount in mounts:
            before = leases_left(in_namespace, mount)
            say(f"revoking {len(before)} lease(s) under {mount}/" + (f" in namespace {namespace}" if namespace else ""))
            # The mount's own leases only: with its slash, the prefix never reaches another stack's mount
            # whose path starts with this one's (several stacks in one Vault: vault_prefix), nor, in a
            # namespace, another namespace's.
            in_namespace.adapter.put(f"/v1/sys/leases/revoke-prefix/{mount}/", json={"sync": True})
            after += leases_left(in_namespace, mount)
    if after:
        raise DownError(f"{len(after)} lease(s) are left after revoke-prefix, e.g. {after[0]}")
    users, drop = database_users(outputs, config)
    left = users()
    if left:
        # No lease holds them: Vault made them and went down before it recorded their lease.
        say(f"dropping {len(left)} dynamic database user(s) that no lease held: {', '.join(left)}")
        drop(left)
        left = users()
    if left:
        raise DownError(f"{len(left)} dynamic database user(s) are left after revocation: {', '.join(left[:5])}")
    say("no lease and no dynamic database user left")


def down(name: str, env: dict[str, str], work_dir: Path = ROOT) -> None:
    stack = open_stack(name, env, work_dir)
    config = stack_settings.of_stack(stack, work_dir)
    outputs = stack.outputs()
    target = targets.of(config)
    if "database_mount" in outputs:
        # Held for the revocation only (the program opens its own way for the destroy).
        with target.reaching_vault(config):
            revoke_everything(outputs, config)
    else:
        say("the stack has no database secrets engine: no lease to revoke")
    say(f"destroying stack {name}")
    # Providers as the program configures them now: a cluster's Vault through a node that serves.
    stack.destroy(on_output=lambda line: print(line, file=sys.stderr), run_program=True)
    stack.workspace.remove_stack(name, preserve_config=True)
    left = target.left_after_destroy(config, say)
    if left:
        raise DownError(f"left after destroy: {', '.join(left)}")
    say(f"stack {name} is down: no lease, no dynamic user, {target.AFTER_DOWN}")


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python3 -m toolchain.down STACK", file=sys.stderr)
        return 2
    try:
        down(sys.argv[1], pulumi_env())
    except (DownError, auto.CommandError, kubernetes_target.KubernetesTargetError, PortForwardError) as error:
        say(f"ERROR: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
