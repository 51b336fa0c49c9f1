"""The post-deploy checks as a resource that runs on every `pulumi up` and fails it when a check fails.

Its diff always reports a change, so every update runs the checks again with
real credentials; the report (no secrets) is its only output.
"""

import uuid
from typing import Any, Optional

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.checks import ClientCheck, Target, run_checks


def _run(props: dict[str, Any]) -> dict:
    # Numbers cross Pulumi's wire as floats.
    target = Target(**{**props["target"], "db_port": int(props["target"]["db_port"])})
    clients = [ClientCheck(**c) for c in props["clients"]]
    report = run_checks(target, clients, props["admin"], props["bootstrap_password"])
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


class PostDeployChecks(Resource):
    """Runs `components.checks.run_checks` at every update; `report` says what passed."""

    report: pulumi.Output[dict]

    def __init__(
        self, name: str, target: pulumi.Input[dict], clients: pulumi.Input[list],
        admin: pulumi.Input[str], bootstrap_password: pulumi.Input[str],
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        props = {
            "target": target, "clients": pulumi.Output.secret(clients), "admin": admin,
            "bootstrap_password": pulumi.Output.secret(bootstrap_password), "report": None,
        }
        super().__init__(_ChecksProvider(), name, props, opts)
