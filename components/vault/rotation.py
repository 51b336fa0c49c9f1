"""A schedule that says, at each `pulumi up`, whether something it stands for is due for renewal.

Resources with a lifetime (an AppRole secret_id, say) are replaced with it:
`ResourceOptions(replace_with=[rotation])`. It is replaced at the first
preview or `up` once `rotate_after` seconds have passed since it was made, so
a stack brought up at least that often never lets the thing expire; a preview
right after an `up` shows no change. (pulumi-time's `Rotating` does this; that
provider cannot be built here.)

`rotates` names what it stands for (the root credential's `<mount>/rotate-root/<db>`,
say): the policy gate sees a resource's props, not its `replace_with`, and finds
the schedule of a rotate-root by it.
"""

import time
import uuid
from typing import Any, Optional

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult


class _RotationProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=uuid.uuid4().hex, outs={**props, "created_at": int(time.time())})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        due = time.time() - olds["created_at"] >= news["rotate_after"]
        renamed = olds.get("rotates", "") != news.get("rotates", "")
        return DiffResult(changes=due or renamed or olds["rotate_after"] != news["rotate_after"],
                          replaces=["created_at"] if due else [])

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs={**news, "created_at": olds["created_at"]})


class Rotation(Resource, module="dbcreds", name="Rotation"):
    """Replaced once `rotate_after` seconds have passed since it was made (`created_at`, Unix seconds)."""

    created_at: pulumi.Output[int]

    def __init__(self, name: str, rotate_after: int, opts: Optional[pulumi.ResourceOptions] = None,
                 rotates: pulumi.Input[str] = ""):
        if rotate_after <= 0:
            raise ValueError(f"rotation {name}: rotate_after must be positive, got {rotate_after}")
        super().__init__(_RotationProvider(), name,
                         {"rotate_after": rotate_after, "rotates": rotates, "created_at": None}, opts)
