"""An app's migration stage as a resource, so that a step back is refused at preview.

The stage is the resource's only input. Its `check` sees the stage in the
state beside the new one and fails with `stage_change_problem`'s reason: the
engine reports it against the `stage` property before anything changes. The
migration component's other resources wait for this one, so at an `up`
without a preview nothing else moves either.
"""

from typing import Any, Optional

import pulumi
from pulumi.dynamic import (CheckFailure, CheckResult, CreateResult, DiffResult, Resource, ResourceProvider,
                            UpdateResult)

from components.migration.stages import stage_change_problem


class _StageProvider(ResourceProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        problem = stage_change_problem((olds or {}).get("stage"), news.get("stage"))
        return CheckResult(news, [CheckFailure("stage", problem)] if problem else [])

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=props["app"], outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=olds.get("stage") != news.get("stage"), replaces=[])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=news)


class MigrationStage(Resource):
    """`stage` of `app`'s migration; a change back from `dynamic` fails its check."""

    stage: pulumi.Output[str]

    def __init__(self, name: str, app: str, stage: str, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(_StageProvider(), name, {"app": app, "stage": stage}, opts)
