"""The post-deploy checks as a resource that runs on every `pulumi up` and fails it when a check fails.

Its diff always reports a change, so every update runs the checks again with
real credentials; the report (no secrets) is its only output.

    PostDeployChecks("checks", CheckPlanArgs(target={...}, clients=[client_check(...)], ...))
"""

import dataclasses
import datetime
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.vault.check_plan import CheckPlan
from components.vault.checks import run_checks


@dataclass
class CheckPlanArgs:
    """`CheckPlan`'s fields as Pulumi inputs (CheckPlan says what each means). The fields in
    SECRET_FIELDS hold secrets (secret_ids, passwords, a token): they travel and rest as secrets."""

    #: `Target`'s fields: where the checks reach Vault and the database, and the CAs that verify them.
    target: pulumi.Input[Mapping[str, Any]]
    #: `ClientCheck`'s fields, one entry per client (`client_check` makes one from a ClientAccess).
    clients: pulumi.Input[Sequence[pulumi.Input[Mapping[str, Any]]]] = ()
    admin: pulumi.Input[str] = ""
    bootstrap_password: pulumi.Input[str] = ""
    protected_paths: pulumi.Input[Sequence[str]] = ()
    static_creds_paths: pulumi.Input[Sequence[str]] = ()
    vault_token: pulumi.Input[str] = ""
    database_pki_mount: pulumi.Input[str] = ""
    group_roles: pulumi.Input[Mapping[str, str]] = field(default_factory=dict)
    #: `KvLoginCheck`'s fields, and `RetiredLogin`'s, one entry each.
    kv_logins: pulumi.Input[Sequence[pulumi.Input[Mapping[str, Any]]]] = ()
    retired_logins: pulumi.Input[Sequence[pulumi.Input[Mapping[str, Any]]]] = ()
    node_addresses: pulumi.Input[Sequence[str]] = ()
    raft_voters: int = 0
    root_rotated_at: pulumi.Input[int] = 0
    metrics: bool = False

    SECRET_FIELDS = ("clients", "kv_logins", "bootstrap_password", "retired_logins", "vault_token")

    def props(self) -> dict[str, pulumi.Input[Any]]:
        """The plan as a resource's properties (one per field), its secrets marked secret."""
        props = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {**props, **{name: pulumi.Output.secret(props[name]) for name in self.SECRET_FIELDS}}


def _run(props: dict[str, Any], before: Optional[Mapping[str, Any]] = None) -> dict:
    report = run_checks(CheckPlan.from_dict(props))
    if not report.passed:
        raise RuntimeError(f"post-deploy checks failed: {report.failures()}")
    report.certificates = replaced_certificates((before or {}).get("certificates") or {}, report.certificates,
                                                datetime.datetime.now(datetime.timezone.utc))
    return report.as_dict()


def replaced_certificates(before: Mapping[str, Any], now: Mapping[str, Any],
                          at: datetime.datetime) -> dict:
    """The report's `certificates` (what each server presents now), each one served in place of the
    certificate the previous report named given `replaced`: that one's serial and end, and `expired`,
    whether its end had passed at `at` (when these checks ran), as after a machine off for months."""
    result = {}
    for server, current in now.items():
        old = before.get(server) or {}
        result[server] = dict(current)
        if old.get("serial") and current.get("serial") and old["serial"] != current["serial"]:
            ended = datetime.datetime.strptime(old["not_after"], "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=datetime.timezone.utc)
            result[server]["replaced"] = {"serial": old["serial"], "not_after": old["not_after"],
                                          "expired": ended < at}
    return result


def replacement_lines(report: Mapping[str, Any]) -> list[str]:
    """One line per server whose certificate the `up` replaced: which one, until when, and by which."""
    lines = []
    for server, cert in (report.get("certificates") or {}).items():
        old = cert.get("replaced")
        if old:
            state = "expired at" if old["expired"] else "valid until"
            lines.append(f"{server} certificate replaced: serial {old['serial']} ({state} {old['not_after']}) "
                         f"-> serial {cert['serial']} (valid until {cert['not_after']})")
    return lines


class _ChecksProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=uuid.uuid4().hex, outs={"report": _run(props)})

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=True, replaces=[])

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs={"report": _run(news, olds.get("report"))})


def client_check(name: str, access: Any, allowed: Sequence[str], forbidden: Sequence[str],
                 max_ttl: int) -> pulumi.Output[dict]:
    """One client's entry of `clients`: its login and creds path from its `ClientAccess`, what it may
    and may not run, and its role's max_ttl."""
    return pulumi.Output.all(access.approle_mount, access.role_id, access.secret_id, access.creds_path).apply(
        lambda a: {"name": name, "approle_mount": a[0], "role_id": a[1], "secret_id": a[2], "creds_path": a[3],
                   "allowed": list(allowed), "forbidden": list(forbidden), "max_ttl": max_ttl})


class PostDeployChecks(Resource, module="dbcreds", name="PostDeployChecks"):
    """Runs `components.vault.checks.run_checks` on `plan` at every update; `report` says what passed.

    Its properties are the plan's fields, one each (the state keeps that shape); the secret ones
    (`CheckPlanArgs.SECRET_FIELDS`) travel and rest as secrets.
    """

    report: pulumi.Output[dict]

    def __init__(self, name: str, plan: CheckPlanArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(_ChecksProvider(), name, {**plan.props(), "report": None}, opts)
        # The `up`'s output names each certificate it replaced (the report's `certificates` hold it too).
        self.report.apply(lambda report: [pulumi.log.info(line, resource=self)
                                          for line in replacement_lines(report or {})])
