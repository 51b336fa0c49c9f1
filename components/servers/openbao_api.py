"""The stack's hand on an OpenBao server it reaches by address, wherever the server runs (a container,
a pod): its initialisation, and a keeper that unseals it whenever a restart left it sealed.

The local target's server does the same from its own resource (`components.local.providers.openbao_server`),
which also runs the process.
"""

import tempfile
from pathlib import Path
from typing import Any, Optional

import hvac
import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.servers.openbao import (
    INIT_TIMEOUT_SECONDS,
    initialize,
    is_active,
    unseal,
    wait_active,
)
from components.servers.process import wait_ready, write_file


def _client(address: str, ca_pem: str, timeout: int = 10) -> tuple[hvac.Client, Any]:
    ca = tempfile.NamedTemporaryFile("w", suffix=".pem")
    ca.write(ca_pem)
    ca.flush()
    return hvac.Client(url=address, token="", verify=ca.name, timeout=timeout), ca


def _wait_answering(client: hvac.Client, address: str) -> None:
    def ready() -> None:
        client.sys.read_health_status(method="GET")

    wait_ready(ready, None, Path("/dev/null"), f"OpenBao at {address}", RuntimeError)


#: The stack admin token's period, where the stack keeps no root token: renewed by any `up` in its second
#: half; a stack left without an `up` longer loses it (break glass: generate a root token).
ADMIN_TOKEN_PERIOD = 30 * 86400
ADMIN_POLICY = "dbcreds-stack-admin"


def _stack_admin_token(client: hvac.Client, policy: str) -> str:
    """Writes the stack admin policy and makes an orphan periodic token of it alone."""
    client.sys.create_or_update_policy(ADMIN_POLICY, policy)
    made = client.auth.token.create_orphan(policies=[ADMIN_POLICY], no_default_policy=True,
                                           period=f"{ADMIN_TOKEN_PERIOD}s", display_name="dbcreds-stack-admin")
    return made["auth"]["client_token"]


class _OpenBaoInitProvider(ResourceProvider):
    """Initialises the server in new raft storage and unseals it (Shamir) or waits until it unsealed
    itself (static seal); a new container on the same storage (the image or the config changed) is
    unsealed with the keys from state. Without keep_root_token it makes the stack's own admin policy
    and a periodic token of it, then revokes the root token, and renews that token at an `up` in its
    second half."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        write_file(Path(props["ca_file"]), props["ca_pem"], 0o644)
        client, ca = _client(props["address"], props["ca_pem"], INIT_TIMEOUT_SECONDS)
        with ca:
            _wait_answering(client, props["address"])
            if client.sys.is_initialized():
                raise RuntimeError(f"OpenBao at {props['address']} is initialised already: its raft storage "
                                   f"{props['raft_volume']} holds a server whose keys are not in this stack's "
                                   "state (another stack's, or an initialisation interrupted before the state "
                                   "recorded it); start over with new storage: pulumi up --replace on the "
                                   "resource that holds it (the docker target's vault-raft Volume, the "
                                   "kubernetes target's vault StatefulSet)")
            seal = props.get("seal") or "shamir"
            root_token, keys = initialize(client, int(props["key_shares"]), int(props["key_threshold"]), seal)
            if seal == "shamir":
                unseal(client, keys)
            else:
                wait_active(client)
            admin_token = root_token
            if not props.get("keep_root_token", True):
                client.token = root_token
                admin_token = _stack_admin_token(client, props["admin_policy"])
                client.auth.token.revoke_self()
        return CreateResult(id_=props["raft_volume"], outs={**props, **_secrets(admin_token, keys, seal)})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in ("raft_volume", "key_shares", "key_threshold", "seal", "keep_root_token")
                    if olds.get(k) != news.get(k)]
        changed = [k for k in ("container_id", "ca_pem", "ca_file", "address", "admin_policy")
                   if olds.get(k) != news.get(k)]
        # A state made before the admin token had its name: the update records it under that name.
        renamed = "admin_token" not in olds
        return DiffResult(changes=bool(replaces or changed or renamed or self._token_half_spent(olds)),
                          replaces=replaces, delete_before_replace=True)

    @staticmethod
    def _token_half_spent(olds: dict[str, Any]) -> bool:
        """Whether the stack admin token (where no root token is kept) is in its second half."""
        if olds.get("keep_root_token", True):
            return False
        client, ca = _client(olds["address"], olds["ca_pem"], timeout=5)
        with ca:
            client.token = _admin_token(olds)
            try:
                ttl = client.auth.token.lookup_self()["data"]["ttl"]
            except Exception:  # noqa: BLE001 - unreachable now: the up's own steps say so
                return False
        return ttl < ADMIN_TOKEN_PERIOD // 2

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        write_file(Path(news["ca_file"]), news["ca_pem"], 0o644)
        seal = news.get("seal") or "shamir"
        keys = olds.get("unseal_keys") or olds.get("recovery_keys") or []
        client, ca = _client(news["address"], news["ca_pem"])
        with ca:
            _wait_answering(client, news["address"])
            if seal == "shamir":
                unseal(client, keys)
            else:
                wait_active(client)
            if not news.get("keep_root_token", True):
                client.token = _admin_token(olds)
                if olds.get("admin_policy") != news.get("admin_policy"):
                    client.sys.create_or_update_policy(ADMIN_POLICY, news["admin_policy"])
                client.auth.token.renew_self()
        return UpdateResult(outs={**news, **_secrets(_admin_token(olds), keys, seal)})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        Path(props["ca_file"]).unlink(missing_ok=True)


def _admin_token(outs: dict[str, Any]) -> str:
    """The token the stack configures Vault with (states made before it had that name call it root_token)."""
    return outs.get("admin_token") or outs.get("root_token") or ""


def _secrets(admin_token: str, keys: list[str], seal: str) -> dict[str, Any]:
    which = "unseal_keys" if seal == "shamir" else "recovery_keys"
    return {"admin_token": admin_token, which: keys}


class OpenBaoInit(Resource, module="dbcreds", name="OpenBaoInit"):
    """The initialisation of an OpenBao reached at `address`: the stack's admin token and its unseal
    keys (Shamir) or recovery keys (static seal), all secret.

    `raft_volume` names what holds its raft data (new storage: a new initialisation);
    `container_id` what runs it (a change: the new server is unsealed with the kept keys).
    `ca_file` is where `ca_pem` is written on this host, for the Vault provider. With
    keep_root_token, the admin token is the root token; without, it is a periodic token of
    admin_policy alone (`components.vault_policies.stack_admin_policy`), and the root token is
    revoked once that exists (`operator generate-root` with the recovery keys makes another)."""

    admin_token: pulumi.Output[str]
    unseal_keys: pulumi.Output[list]
    recovery_keys: pulumi.Output[list]

    def __init__(self, name: str, address: pulumi.Input[str], ca_pem: pulumi.Input[str], ca_file: str,
                 raft_volume: pulumi.Input[str], container_id: pulumi.Input[str], key_shares: int,
                 key_threshold: int, seal: str = "shamir", keep_root_token: bool = True, admin_policy: str = "",
                 opts: Optional[pulumi.ResourceOptions] = None):
        props = {"address": address, "ca_pem": ca_pem, "ca_file": ca_file, "raft_volume": raft_volume,
                 "container_id": container_id, "key_shares": key_shares, "key_threshold": key_threshold,
                 "admin_token": None, "unseal_keys": None, "recovery_keys": None}
        # A Shamir server that keeps its root token has the inputs it had before the other kinds existed.
        if seal != "shamir" or not keep_root_token:
            props.update({"seal": seal, "keep_root_token": keep_root_token, "admin_policy": admin_policy})
        super().__init__(_OpenBaoInitProvider(), name, props, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=["admin_token", "root_token", "unseal_keys",
                                                                    "recovery_keys"])))


class _UnsealedProvider(ResourceProvider):
    @staticmethod
    def _start(props: dict[str, Any]) -> None:
        if props.get("container"):
            from components.servers.containers import start_container

            start_container(props["host"], props["container"])

    @staticmethod
    def _runs(props: dict[str, Any]) -> bool:
        if not props.get("container"):
            return True
        from components.servers.containers import running

        return running(props["host"], props["container"])

    def _ensure(self, props: dict[str, Any]) -> None:
        self._start(props)
        client, ca = _client(props["address"], props["ca_pem"])
        with ca:
            _wait_answering(client, props["address"])
            unseal(client, props["unseal_keys"])

    def create(self, props: dict[str, Any]) -> CreateResult:
        self._ensure(props)
        return CreateResult(id_=props["address"], outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        if olds != news or not self._runs(news):
            return DiffResult(changes=True, replaces=[])
        client, ca = _client(news["address"], news["ca_pem"], timeout=5)
        with ca:
            return DiffResult(changes=not is_active(client), replaces=[])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._ensure(news)
        return UpdateResult(outs=news)


class VaultUnsealed(Resource, module="dbcreds", name="VaultUnsealed"):
    """The server at `address` answers and is unsealed: checked at every preview; unsealed with the
    keys when not (after waiting for it to answer). With a docker `container` (and its engine's
    `host`), the container is started first when it stopped; elsewhere (a StatefulSet's pod) whatever
    runs the server brings it back by itself."""

    def __init__(self, name: str, address: pulumi.Input[str], ca_pem: pulumi.Input[str],
                 unseal_keys: pulumi.Input[list], host: pulumi.Input[str] = "", container: pulumi.Input[str] = "",
                 opts: Optional[pulumi.ResourceOptions] = None):
        props = {"host": host, "container": container, "address": address, "ca_pem": ca_pem,
                 "unseal_keys": pulumi.Output.secret(unseal_keys)}
        super().__init__(_UnsealedProvider(), name, props, opts)
