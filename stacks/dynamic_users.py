"""The stack's dynamic database users wherever its database runs: how to list and drop them (`make
down` does), and the resource that drops the expired ones at every `up`.

A dynamic user whose lease Vault never recorded (Vault made the user and was
killed before it wrote the lease) is one Vault will never revoke. Its VALID
UNTIL, the lease's end, passes all the same, and past it no lease can hold the
user (every renewal moves VALID UNTIL: `expired_dynamic_users_query`). So every
`up` drops the dynamic users past their VALID UNTIL, with the revocation SQL
Vault runs, and names them.

It lives here, not under components/, because it reaches the database the way
the stack's target does (stacks/targets.py), from the stack's validated config.
"""

import uuid
from pathlib import Path
from typing import Any, Callable, Optional

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.postgres_sql import DYNAMIC_USERS_QUERY, expired_dynamic_users_query
from stacks import config as stack_settings
from stacks import targets
from stacks.config import StackConfig

#: (query) -> the dynamic users the query lists (every one unless told); (users) -> None, dropped.
ListUsers = Callable[..., list[str]]
DropUsers = Callable[[list[str]], None]


def database_users(config: StackConfig, location: str = "") -> tuple[ListUsers, DropUsers]:
    """How to list the stack's dynamic database users, and to drop some, wherever its database runs (as
    its superuser, or the external target's stack admin). location: where its target's database runs
    (the `db_<DATABASE_LOCATION>` output: the docker target's container, the kubernetes target's pod)."""
    target = targets.of(config)
    return (lambda query=DYNAMIC_USERS_QUERY: target.dynamic_users(config, location, query),
            lambda users: target.drop_dynamic_users(config, location, users))


#: Tries at dropping the expired users. Vault, restarted after their leases ended, revokes the same
#: users meanwhile, and of two concurrent DROP ROLEs of one role PostgreSQL fails one ("tuple
#: concurrently deleted"): a user gone by either is gone.
ATTEMPTS = 3


def reap(list_users: ListUsers, drop_users: DropUsers, query: Optional[str] = None) -> list[str]:
    """Drops the dynamic users past their VALID UNTIL; returns the ones it found, sorted, each gone now
    (dropped by this, or by Vault's own revocation in the meantime). Raises naming those left."""
    query = query or expired_dynamic_users_query()
    found: set[str] = set()
    error: Exception | None = None
    for _ in range(ATTEMPTS):
        expired = list_users(query)
        if not expired:
            return sorted(found)
        found |= set(expired)
        try:
            drop_users(expired)
        except Exception as failure:  # noqa: BLE001 - whatever failed, what is left is listed again
            error = failure
    left = list_users(query)
    if left:
        raise RuntimeError(f"{len(left)} dynamic user(s) past their VALID UNTIL are left after {ATTEMPTS} tries "
                           f"to drop them: {', '.join(left[:5])}" + (f" (last error: {error})" if error else ""))
    return sorted(found)


def _reap(props: dict[str, Any]) -> dict:
    config = stack_settings.validate_settings(props["settings"], props["stack"], Path(props["project_dir"]))
    list_users, drop_users = database_users(config, props["db_location"])
    return {"dropped": reap(list_users, drop_users)}


class _ExpiredUsersProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=uuid.uuid4().hex, outs=_reap(props))

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> DiffResult:
        # Users expire between two ups: every update looks again.
        return DiffResult(changes=True, replaces=[])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=_reap(news))


class ExpiredUsersReaped(Resource, module="dbcreds", name="ExpiredUsersReaped"):
    """Drops the stack's dynamic users past their VALID UNTIL at every update; `dropped` names them.

    settings: the stack's dbcreds settings as Pulumi holds them (text; they travel and rest as a
    secret: some are); the provider validates them into the StackConfig that stacks/* take.
    db_location: where the target's database runs (`database_location`).
    """

    dropped: pulumi.Output[list]

    def __init__(self, name: str, settings: dict[str, str], stack: str, project_dir: str,
                 db_location: pulumi.Input[str] = "", opts: Optional[pulumi.ResourceOptions] = None):
        props = {"settings": pulumi.Output.secret(settings), "stack": stack, "project_dir": project_dir,
                 "db_location": db_location, "dropped": None}
        super().__init__(_ExpiredUsersProvider(), name, props, opts)


def expired_users_reaped(config: StackConfig, database: Any,
                         opts: Optional[pulumi.ResourceOptions] = None) -> ExpiredUsersReaped:
    """The reaper of the running program's stack (call from a Pulumi program): its settings read as
    `stacks.config.load` reads them, its database found as `make down` finds it."""
    settings = pulumi.Config()
    fields = (*stack_settings.FIELDS, *stack_settings.OBJECT_FIELDS, *stack_settings.SECRET_FIELDS)
    return ExpiredUsersReaped(
        "expired-users", settings={f: settings.get(f) for f in fields if settings.get(f) is not None},
        stack=pulumi.get_stack(), project_dir=str(Path.cwd()),
        db_location=database_location(config, database),
        opts=pulumi.ResourceOptions.merge(pulumi.ResourceOptions(depends_on=[database]), opts))


def database_location(config: StackConfig, database: Any) -> Any:
    """Where the stack's database runs, from its component (the target's DATABASE_LOCATION attribute:
    a container, a pod), or empty where it is reached by address."""
    attribute = targets.of(config).DATABASE_LOCATION
    return getattr(database, attribute) if attribute else ""
