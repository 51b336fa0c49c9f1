"""The certificates a CockroachDB cluster expects in its certs directory, from a CA of its own.

    certs = CockroachCertificates("crdb", CockroachCertificatesArgs(
        node_addresses=("127.0.0.1", "localhost", "crdb-0.crdb.db.svc"), sql_users=("dbcreds_admin",)))
    certs.files  # secret: {"ca.crt": ..., "node.crt": ..., "node.key": ..., "client.root.crt": ..., ...}

Or from Vault's PKI (`components.vault.database_pki`, `db_certificates: vault_pki`):
`certs_directory(pki)` lays its node and client.root certificates out the same
way, with the chain (Vault's intermediate, then the bootstrap CA) as `ca.crt`.

Shapes follow CockroachDB's `cockroach cert` commands: `node.crt` has CN
`node` and a SAN for every address the nodes are reached at, with both server
and client auth (nodes dial each other with it); `client.<user>.crt` has CN
`<user>` and client auth only. `components.servers.cockroach.file_mode` gives each file its mode (keys 0600:
CockroachDB refuses keys others can read).
"""

import ipaddress
from dataclasses import dataclass
from typing import Optional

import pulumi

from components.defaults import CA_VALIDITY_HOURS, CERT_VALIDITY_HOURS
from components.certificates import self_signed_ca, signed_certificate


def split_addresses(addresses: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) among the addresses nodes are reached at."""
    dns, ips = [], []
    for address in addresses:
        try:
            ips.append(str(ipaddress.ip_address(address)))
        except ValueError:
            dns.append(address)
    return dns, ips


@dataclass(frozen=True)
class CockroachCertificatesArgs:
    #: Every address (IP or DNS name) clients and other nodes reach the nodes at.
    node_addresses: tuple[str, ...] = ("127.0.0.1", "localhost")
    #: SQL users who get a client certificate besides root.
    sql_users: tuple[str, ...] = ()
    ca_common_name: str = "dbcreds CockroachDB CA"
    ca_validity_hours: int = CA_VALIDITY_HOURS
    cert_validity_hours: int = CERT_VALIDITY_HOURS


class CockroachCertificates(pulumi.ComponentResource):
    """A CA, the node certificate, and client certificates for root and each SQL user."""

    ca_cert_pem: pulumi.Output[str]
    #: File name in the certs directory -> content (secret: it holds the keys).
    files: pulumi.Output[dict]

    def __init__(self, name: str, args: CockroachCertificatesArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:database:CockroachCertificates", name, None, opts)
        if not args.node_addresses:
            raise ValueError("node_addresses: list at least one address the nodes are reached at")
        ca = self_signed_ca(f"{name}-ca", self, args.ca_common_name, args.ca_validity_hours)
        dns, ips = split_addresses(args.node_addresses)

        def issue(suffix: str, common_name: str, server: bool, dns_names=(), ip_addresses=()):
            return signed_certificate(
                f"{name}-{suffix}", self, ca, common_name=common_name, dns_names=dns_names,
                ip_addresses=ip_addresses, server=server, client=True, validity_hours=args.cert_validity_hours,
            )

        certs = {"node": issue("node", "node", True, dns, ips), "client.root": issue("client-root", "root", False)}
        for user in args.sql_users:
            certs[f"client.{user}"] = issue(f"client-{user}", user, False)
        contents = {"ca.crt": ca.cert_pem}
        for stem, cert in certs.items():
            contents[f"{stem}.crt"] = cert.cert_pem
            contents[f"{stem}.key"] = cert.private_key_pem
        self.ca_cert_pem = ca.cert_pem
        self.files = pulumi.Output.secret(pulumi.Output.all(**contents))
        self.register_outputs({"ca_cert_pem": self.ca_cert_pem, "files": self.files})


#: `DatabasePkiArgs` fields for a CockroachDB node: its certificate is CN `node` and authenticates nodes
#: to each other too; its root user logs in with a client certificate.
COCKROACH_PKI = {"server_common_name": "node", "server_client_auth": True, "client_certificates": ("root",)}


def certs_directory(pki) -> pulumi.Output[dict]:
    """The certs directory's files from a `DatabasePki` made for CockroachDB (server CN `node` with
    client auth, a `root` client certificate): each certificate followed by the intermediate, the
    whole chain as ca.crt. Secret."""
    def files(values) -> dict:
        chain, node_cert, node_key, clients = values
        contents = {"ca.crt": chain, "node.crt": node_cert, "node.key": node_key}
        for user, cert in clients.items():
            contents[f"client.{user}.crt"] = cert["cert_pem"]
            contents[f"client.{user}.key"] = cert["private_key_pem"]
        return contents

    return pulumi.Output.secret(pulumi.Output.all(pki.ca_chain_pem, pki.cert_pem, pki.private_key_pem,
                                                  pki.client_certs).apply(files))
