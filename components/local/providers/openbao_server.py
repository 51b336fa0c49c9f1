"""A local OpenBao server (one node of a raft cluster) as a Pulumi resource: configured, started,
and, for the node that `initialises`, initialised (and unsealed with Shamir keys).

No provider plugin manages a local process (pulumi-command is not served here
either), so this is a Python dynamic provider around `components.servers.openbao`.
The root token and unseal (or recovery) keys exist only in the initialising
node's secret outputs, which the state keeps encrypted. With the static seal,
every node reads the seal key from a 0600 file in its folder and unseals itself;
the other nodes join the first one (`retry_join`).

That the process runs and is unsealed is checked at every `pulumi up` by a
resource of its own (`components.servers.server_running`); this one changes
only with its inputs (a config change restarts the server and unseals it with
the keys from state).
"""

from pathlib import Path
from typing import Any, Optional, Sequence

import pulumi
from pulumi.dynamic import CheckFailure, CreateResult, Resource, UpdateResult

from components.dynamic.failures import VAULT_ERRORS, failing_as
from components.local.providers.local_server import LocalServerProvider

from components.servers.openbao import (
    INIT_TIMEOUT_SECONDS,
    LocalOpenBao,
    LocalOpenBaoError,
    bao_binary,
    initialize,
    unseal,
    wait_unsealed,
)

def _server(props: dict[str, Any]) -> LocalOpenBao:
    return LocalOpenBao(Path(props["data_dir"]), int(props["port"]), int(props["cluster_port"]))


def _outs(props: dict[str, Any], server: LocalOpenBao, **secrets: Any) -> dict[str, Any]:
    return {**props, "address": server.address, "audit_log": str(server.audit_log), "ca_file": str(server.ca_file),
            "database_ca_file": str(server.database_ca_file), **secrets}


def _configure(server: LocalOpenBao, props: dict[str, Any], previous_seal_key: str = "") -> None:
    keys = [k for k in (props.get("seal_key") or "", previous_seal_key) if k]
    server.configure(props["ca_pem"], props["cert_pem"], props["key_pem"], props["database_ca_pem"],
                     props.get("peers") or (), keys)


def _unseal(server: LocalOpenBao, props: dict[str, Any], keys: list[str]) -> None:
    """Shamir: the kept keys unseal it; static: it unseals itself (and a joining node joins first)."""
    if props.get("seal") == "static":
        wait_unsealed(server.client(), INIT_TIMEOUT_SECONDS)
    else:
        unseal(server.client(), keys)


class _OpenBaoServerProvider(LocalServerProvider):
    server = staticmethod(_server)
    port_inputs = ("port", "cluster_port")
    # A new key split or seal is a new initialisation: another server.
    replace_inputs = ("data_dir", "key_shares", "key_threshold", "seal", "initialises")
    # Its config is rewritten and it restarts; the database's CA is only a file it reads per connection.
    restart_inputs = ("port", "cluster_port", "ca_pem", "cert_pem", "key_pem", "peers", "seal_key")
    live_inputs = ("database_ca_pem",)

    def preflight(self, props: dict[str, Any]) -> list[CheckFailure]:
        try:
            bao_binary()
        except LocalOpenBaoError as error:
            return [CheckFailure("data_dir", str(error))]
        return []

    def create(self, props: dict[str, Any]) -> CreateResult:
        def build(server: LocalOpenBao) -> CreateResult:
            _configure(server, props)
            server.use_binary(props.get("binary") or "")
            server.start()
            root_token, keys = "", []
            with failing_as(f"initialising and unsealing OpenBao at {server.address}", VAULT_ERRORS):
                if props.get("initialises", True):
                    client = server.client(timeout=INIT_TIMEOUT_SECONDS)
                    if client.sys.is_initialized():
                        raise LocalOpenBaoError(
                            f"OpenBao at {server.address} joined an initialised cluster before it was initialised: "
                            f"its peers {', '.join(props.get('peers') or ())} hold a cluster whose keys are not in "
                            "this state; remove them (make down) and start over")
                    root_token, keys = initialize(client, int(props["key_shares"]), int(props["key_threshold"]),
                                                  props.get("seal") or "shamir")
                _unseal(server, props, keys)
            return CreateResult(id_=str(server.data_dir),
                                outs=_outs(props, server, root_token=root_token, unseal_keys=keys))

        return self.create_fresh(props, build)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        old_server, server = _server(olds), _server(news)
        if self.must_restart(olds, news):
            old_server.stop()
            # A new seal key: the old one stays the previous key, so the node still unseals and rewraps.
            previous = olds.get("seal_key") or "" if olds.get("seal_key") != news.get("seal_key") else ""
            _configure(server, news, previous)
        elif olds.get("database_ca_pem") != news["database_ca_pem"]:
            server.trust_database_ca(news["database_ca_pem"])
        server.start()
        with failing_as(f"unsealing OpenBao at {server.address}", VAULT_ERRORS):
            _unseal(server, news, olds["unseal_keys"])
        return UpdateResult(outs=_outs(news, server, root_token=olds["root_token"], unseal_keys=olds["unseal_keys"]))


#: The resource type the policy gate knows our OpenBao server by.
RESOURCE_TYPE = "pulumi-python:dynamic/dbcreds:OpenBaoServer"


class OpenBaoServer(Resource, module="dbcreds", name="OpenBaoServer"):
    """A real (not dev-mode) OpenBao server process on 127.0.0.1 (type `RESOURCE_TYPE`): one node.

    peers: the other nodes' API addresses (none: a single server). seal: `shamir` or `static`, with
    seal_key (base64, secret). initialises: this node initialises the cluster (its outputs hold the
    root token and the unseal keys, or with the static seal the recovery keys, in `unseal_keys`);
    the others join it and have none.
    """

    address: pulumi.Output[str]
    audit_log: pulumi.Output[str]
    #: The listener's CA, and the database's CA, as files on this host.
    ca_file: pulumi.Output[str]
    database_ca_file: pulumi.Output[str]
    root_token: pulumi.Output[str]
    unseal_keys: pulumi.Output[list]

    def __init__(
        self, name: str, data_dir: str, port: int, cluster_port: int,
        ca_pem: pulumi.Input[str], cert_pem: pulumi.Input[str], key_pem: pulumi.Input[str],
        database_ca_pem: pulumi.Input[str], key_shares: int = 1, key_threshold: int = 1,
        peers: Sequence[str] = (), seal: str = "shamir", seal_key: pulumi.Input[str] = "", initialises: bool = True,
        binary: str = "", opts: Optional[pulumi.ResourceOptions] = None,
    ):
        props = {
            "data_dir": data_dir, "port": port, "cluster_port": cluster_port,
            "ca_pem": ca_pem, "cert_pem": cert_pem, "key_pem": pulumi.Output.secret(key_pem),
            "database_ca_pem": database_ca_pem, "key_shares": key_shares, "key_threshold": key_threshold,
            "address": None, "audit_log": None, "ca_file": None, "database_ca_file": None,
            "root_token": None, "unseal_keys": None,
        }
        # A single Shamir server's inputs stay as they were before clusters: its recorded state shows no diff.
        if peers or seal != "shamir" or not initialises:
            props.update({"peers": list(peers), "seal": seal, "seal_key": pulumi.Output.secret(seal_key),
                          "initialises": initialises})
        # The binary it starts on at create; later releases are the rollout's (OpenBaoRollout).
        if binary:
            props["binary"] = binary
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
            additional_secret_outputs=["root_token", "unseal_keys", "key_pem", "seal_key"],
        ))
        super().__init__(_OpenBaoServerProvider(), name, props, opts)
