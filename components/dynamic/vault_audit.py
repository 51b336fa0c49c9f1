"""The audit devices an external Vault has, read at every `up`: none is refused.

A Vault the stack does not run may have been set up without an audit trail;
credentials handed out through it would leave none. This resource fails the
`up` before the secrets engine is configured in such a Vault. They are read in
the root namespace (no namespace header) whatever the stack's vault_namespace:
OpenBao keeps audit devices there only, and they record every namespace's
requests.
"""

from typing import Any, Optional

import hvac
import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from components.dynamic.failures import VAULT_ERRORS, failing_as
from components.servers.process import pem_file


class NoAuditDevice(RuntimeError):
    pass


def audit_devices(address: str, ca_pem: str, token: str) -> list[str]:
    """Each enabled audit device as "<path> (<type>[, file_path=...])", or NoAuditDevice."""
    with failing_as(f"listing the audit devices of the Vault at {address}", VAULT_ERRORS), \
            pem_file(ca_pem) as ca_file:
        # The root namespace's: a namespace has none of its own.
        devices = hvac.Client(url=address, token=token, verify=ca_file, timeout=30).sys.list_enabled_audit_devices()
    found = sorted(
        f"{path} ({device['type']}" + (f", file_path={device['options']['file_path']}"
                                        if device.get("options", {}).get("file_path") else "") + ")"
        for path, device in devices.get("data", devices).items() if isinstance(device, dict) and "type" in device)
    if not found:
        raise NoAuditDevice(f"the Vault at {address} has no audit device enabled: enable one (its operator) "
                            "before this stack configures credentials in it")
    return found


class _AuditProvider(ResourceProvider):
    def _outs(self, props: dict[str, Any]) -> dict[str, Any]:
        return {**props, "devices": audit_devices(props["address"], props["ca_pem"], props["token"])}

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_="audit", outs=self._outs(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # Read again at every up (an operator may have disabled the device since).
        return DiffResult(changes=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._outs(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)


class VaultAuditDevices(Resource, module="dbcreds", name="VaultAuditDevices"):
    """`devices`: the Vault's enabled audit devices (at least one, or the `up` fails)."""

    devices: pulumi.Output[list]

    def __init__(self, name: str, address: pulumi.Input[str], ca_pem: pulumi.Input[str],
                 token: pulumi.Input[str], opts: Optional[pulumi.ResourceOptions] = None):
        props = {"address": address, "ca_pem": ca_pem, "token": pulumi.Output.secret(token), "devices": None}
        super().__init__(_AuditProvider(), name, props, opts)
