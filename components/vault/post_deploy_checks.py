"""The post-deploy checks as a resource that runs on every `pulumi up` and fails it when a check fails.

Its diff always reports a change, so every update runs the checks again with
real credentials; the report (no secrets) is its only output.
"""

import uuid
from typing import Any, Optional, Sequence

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.vault.checks import CheckPlan, run_checks


def _run(props: dict[str, Any]) -> dict:
    report = run_checks(CheckPlan.from_dict(props))
    if not report.passed:
        raise RuntimeError(f"post-deploy checks failed: {report.failures()}")
    return report.as_dict()


class _ChecksProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=uuid.uuid4().hex, outs={"report": _run(props)})

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=True, replaces=[])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs={"report": _run(news)})


def client_check(name: str, access: Any, allowed: Sequence[str], forbidden: Sequence[str],
                 max_ttl: int) -> pulumi.Output[dict]:
    """One client's entry of `clients`: its login and creds path from its `ClientAccess`, what it may
    and may not run, and its role's max_ttl."""
    return pulumi.Output.all(access.approle_mount, access.role_id, access.secret_id, access.creds_path).apply(
        lambda a: {"name": name, "approle_mount": a[0], "role_id": a[1], "secret_id": a[2], "creds_path": a[3],
                   "allowed": list(allowed), "forbidden": list(forbidden), "max_ttl": max_ttl})


class PostDeployChecks(Resource, module="dbcreds", name="PostDeployChecks"):
    """Runs `components.vault.checks.run_checks` at every update; `report` says what passed.

    Its inputs are `CheckPlan`'s fields; the clients and KV logins (with their
    secret_ids), the bootstrap and retired passwords and the Vault token travel
    and rest as secrets.
    """

    report: pulumi.Output[dict]

    def __init__(
        self, name: str, target: pulumi.Input[dict], clients: pulumi.Input[list],
        admin: pulumi.Input[str] = "", bootstrap_password: pulumi.Input[str] = "",
        protected_paths: pulumi.Input[list] = (), static_creds_paths: pulumi.Input[list] = (),
        vault_token: pulumi.Input[str] = "", database_pki_mount: pulumi.Input[str] = "",
        group_roles: pulumi.Input[dict] = None, kv_logins: pulumi.Input[list] = (),
        retired_logins: pulumi.Input[list] = (), node_addresses: pulumi.Input[list] = (), raft_voters: int = 0,
        root_rotated_at: pulumi.Input[int] = 0, opts: Optional[pulumi.ResourceOptions] = None,
    ):
        props = {
            "target": target, "clients": pulumi.Output.secret(clients), "admin": admin,
            "bootstrap_password": pulumi.Output.secret(bootstrap_password),
            "protected_paths": protected_paths, "static_creds_paths": static_creds_paths,
            "vault_token": pulumi.Output.secret(vault_token), "database_pki_mount": database_pki_mount,
            "group_roles": group_roles or {},
            "kv_logins": pulumi.Output.secret(kv_logins), "retired_logins": pulumi.Output.secret(retired_logins),
            "node_addresses": node_addresses, "raft_voters": raft_voters, "root_rotated_at": root_rotated_at,
            "report": None,
        }
        super().__init__(_ChecksProvider(), name, props, opts)
