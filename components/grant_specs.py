"""The specs as plain data: a dynamic role's grant spec, a client of one, a service user.

A leaf: it imports nothing of the components. The SQL of each dialect, the
dialects and the specs' validation (`components.grants`, which uses the
dialects) all read these types, so none of them needs another to name a spec.
"""

from dataclasses import dataclass
from typing import Any, Mapping

#: A generated or service user may hold this many sessions at once (a role's spec may lower or raise it).
CONNECTION_LIMIT = 10


@dataclass(frozen=True)
class GrantSpec:
    """What one dynamic role's credentials may do, and for how long."""

    name: str
    privileges: tuple[str, ...]
    #: Every table in these schemas (now and, through default privileges, later).
    schemas: tuple[str, ...] = ()
    #: These tables, as "schema.table".
    tables: tuple[str, ...] = ()
    default_ttl: int = 3600
    max_ttl: int = 86400
    #: Sessions each of its users may hold at once (where the dialect can cap them).
    connection_limit: int = CONNECTION_LIMIT


def grant_spec_props(spec: GrantSpec) -> dict[str, Any]:
    """A grant spec as a dynamic provider's properties (what it needs to grant; TTLs are Vault's)."""
    return {"role": spec.name, "privileges": list(spec.privileges), "schemas": list(spec.schemas),
            "tables": list(spec.tables)}


def grant_spec_of_props(props: Mapping[str, Any]) -> GrantSpec:
    """The grant spec in a dynamic provider's properties (`grant_spec_props`; other keys ignored)."""
    return GrantSpec(name=props["role"], privileges=tuple(props["privileges"]), schemas=tuple(props["schemas"]),
                     tables=tuple(props["tables"]))


@dataclass(frozen=True)
class ServiceUser:
    """A database user Vault manages as a static role: rotated every `rotation_period` seconds."""

    username: str
    #: The grant spec whose group the user joins.
    role: str
    rotation_period: int


@dataclass(frozen=True)
class ClientSpec:
    """A team or app that reads the credentials of one dynamic role, and nothing else."""

    name: str
    #: The dynamic role (grant spec) whose credentials the client reads.
    role: str
    #: The client's Vault token: its TTL and the longest it can be renewed to. Leases die with
    #: the token that took them, so credentials last at most token_max_ttl.
    token_ttl: int = 15 * 60
    token_max_ttl: int = 60 * 60
    #: The stack's secret_id for the client expires after this.
    secret_id_ttl: int = 24 * 3600
    #: Statements the post-deploy checks run with the client's credentials: these must work...
    allowed: tuple[str, ...] = ()
    #: ...and these must be refused with "permission denied".
    forbidden: tuple[str, ...] = ()
    #: Kubernetes auth (the kubernetes target only): the service accounts, in these namespaces, whose
    #: pods log in as this client. Both empty: the client logs in with AppRole only.
    service_accounts: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()

    @property
    def kubernetes(self) -> bool:
        """Whether pods log in as this client with their service account (Kubernetes auth)."""
        return bool(self.service_accounts)
