"""Vault's PKI engine issuing the database's server certificate.

    pki = DatabasePki("db-pki", DatabasePkiArgs(
        bootstrap_ca_cert_pem=boot.ca_cert_pem, bootstrap_ca_private_key_pem=boot.ca_private_key_pem,
        dns_names=("localhost",), ip_addresses=("127.0.0.1",), cert_ttl=90 * 86400),
        opts=pulumi.ResourceOptions(providers=[vault_provider]))
    pki.cert_pem (the server's certificate and the intermediate), pki.private_key_pem (secret),
    pki.ca_chain_pem (the intermediate and the bootstrap CA: what clients verify with)

For CockroachDB: `server_common_name="node"` and `server_client_auth=True` (nodes
dial each other with node.crt), and `client_certificates=("root",)`: a client
role issues `client.root`; `pki.client_certs["root"]` holds its certificate and
key (secret).

The mount holds an intermediate CA whose key Vault makes and keeps; the
stack's bootstrap CA signs it (pulumi-tls). An intermediate rather than a root
of its own: whatever already trusts the bootstrap CA (Vault's connection to the
database, verify-full) trusts the certificates Vault issues, with no cycle
between Vault and the database; the bootstrap CA's key never enters Vault; and
Vault's CA can be replaced without touching the trust anchor. The server's
certificate is renewed by the first `up` in the last tenth of its lifetime
(`auto_renew`), or `cert_renew_before` seconds before its end, and revoked when
replaced; the intermediate in its last tenth, or `intermediate_renewal_hours`,
and made Vault's default issuer (Vault would otherwise go on issuing from the
first intermediate it was given).
"""

import json
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_tls as tls
import pulumi_vault as vault

from components.certificates import tenth_unless_given
from components.options import inherited_depends_on


@dataclass(frozen=True)
class DatabasePkiArgs:
    #: The CA that signs Vault's intermediate (the trust anchor clients already have).
    bootstrap_ca_cert_pem: pulumi.Input[str]
    bootstrap_ca_private_key_pem: pulumi.Input[str]
    #: Names the database is reached at (verify-full checks them).
    dns_names: tuple[str, ...] = ("localhost",)
    ip_addresses: tuple[str, ...] = ("127.0.0.1",)
    #: The server certificate's lifetime, and the intermediate's (seconds).
    cert_ttl: int = 90 * 86400
    intermediate_ttl: int = 365 * 86400
    #: How long before its end the first `up` replaces each certificate: the issued ones (seconds), the
    #: intermediate (whole hours, pulumi-tls); None: a tenth of its lifetime.
    cert_renew_before: Optional[int] = None
    intermediate_renewal_hours: Optional[int] = None
    mount_path: str = "pki-db"
    role: str = "database-server"
    #: The server certificate's CN when it is not the first name (CockroachDB's `node`).
    server_common_name: str = ""
    #: The server certificate also authenticates its holder as a client (CockroachDB's nodes).
    server_client_auth: bool = False
    #: Common names (database users) of client certificates, issued by a client-only role.
    client_certificates: tuple[str, ...] = ()
    client_role: str = "database-client"


def issuer_of_import(write_data_json: Optional[str]) -> Optional[str]:
    """The issuer id of the one certificate `<mount>/issuers/import/cert` was given, from its answer's
    `mapping` (issuer id -> key id); None while unknown."""
    if write_data_json is None:
        return None
    mapping = json.loads(write_data_json).get("mapping") or {}
    if len(mapping) != 1:
        raise ValueError(f"importing the intermediate answered {len(mapping)} issuers, not one: {mapping}")
    return next(iter(mapping))


class DatabasePki(pulumi.ComponentResource):
    """A PKI mount with an intermediate signed by the bootstrap CA, a server role, and the database's
    certificate."""

    mount_path: pulumi.Output[str]
    cert_pem: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]
    ca_chain_pem: pulumi.Output[str]
    #: Client certificate CN -> {"cert_pem", "private_key_pem"} (secret).
    client_certs: pulumi.Output[dict]

    def __init__(self, name: str, args: DatabasePkiArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:pki:DatabasePki", name, None, opts)
        if not args.dns_names and not args.ip_addresses:
            raise ValueError(f"{name}: the database needs at least one name or address")
        if not 0 < args.cert_ttl <= args.intermediate_ttl:
            raise ValueError(f"{name}: cert_ttl must be positive and at most intermediate_ttl")
        renew_before = args.cert_ttl // 10 if args.cert_renew_before is None else args.cert_renew_before
        if not 0 < renew_before <= args.cert_ttl:
            raise ValueError(f"{name}: cert_renew_before must be positive and at most cert_ttl")
        after = inherited_depends_on(opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=after)
        mount = vault.Mount(f"{name}-mount", path=args.mount_path, type="pki",
                            description="The database's server certificates",
                            max_lease_ttl_seconds=args.intermediate_ttl, opts=child)
        in_mount = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[mount],
                                                                              deleted_with=mount))
        request = vault.pkisecret.SecretBackendIntermediateCertRequest(
            f"{name}-intermediate-request", backend=args.mount_path, type="internal",
            common_name="dbcreds database intermediate CA", key_type="ec", key_bits=256, opts=in_mount,
        )
        hours = args.intermediate_ttl // 3600
        intermediate = tls.LocallySignedCert(
            f"{name}-intermediate", cert_request_pem=request.csr, ca_cert_pem=args.bootstrap_ca_cert_pem,
            ca_private_key_pem=args.bootstrap_ca_private_key_pem, is_ca_certificate=True,
            validity_period_hours=hours, early_renewal_hours=tenth_unless_given(hours, args.intermediate_renewal_hours),
            set_subject_key_id=True,
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The chain Vault serves: its intermediate, then the bootstrap CA.
        chain = pulumi.Output.concat(intermediate.cert_pem, "\n", args.bootstrap_ca_cert_pem)
        signed = vault.pkisecret.SecretBackendIntermediateSetSigned(
            f"{name}-intermediate-signed", backend=args.mount_path, certificate=chain, opts=in_mount,
        )
        # Vault keeps issuing from its default issuer, the first intermediate it was given: a renewed one
        # would sit unused until the old one ended. Import answers with the intermediate's issuer id
        # (imported now or before), which becomes the default.
        imported = vault.generic.Endpoint(
            f"{name}-intermediate-issuer", path=f"{args.mount_path}/issuers/import/cert",
            data_json=intermediate.cert_pem.apply(lambda pem: json.dumps({"pem_bundle": pem})),
            write_fields=["mapping"], disable_read=True, disable_delete=True,
            opts=pulumi.ResourceOptions.merge(in_mount, pulumi.ResourceOptions(depends_on=[signed])),
        )
        default_issuer = vault.pkisecret.SecretBackendConfigIssuers(
            f"{name}-default-issuer", backend=args.mount_path,
            default=imported.write_data_json.apply(issuer_of_import), default_follows_latest_issuer=False,
            opts=pulumi.ResourceOptions.merge(in_mount, pulumi.ResourceOptions(depends_on=[imported])),
        )
        common_name = args.server_common_name or (args.dns_names or args.ip_addresses)[0]
        role = vault.pkisecret.SecretBackendRole(
            f"{name}-role", backend=args.mount_path, name=args.role,
            allowed_domains=list(dict.fromkeys([*args.dns_names, *filter(None, [args.server_common_name])])),
            allow_bare_domains=True, allow_subdomains=False, allow_ip_sans=bool(args.ip_addresses),
            allow_localhost="localhost" in args.dns_names, server_flag=True, client_flag=args.server_client_auth,
            key_type="ec", key_bits=256, max_ttl=str(args.cert_ttl), ttl=str(args.cert_ttl),
            opts=pulumi.ResourceOptions.merge(in_mount, pulumi.ResourceOptions(
                depends_on=[signed, default_issuer])),
        )
        in_role = pulumi.ResourceOptions(parent=self, additional_secret_outputs=["private_key"])

        def issue(suffix: str, issuing_role, cn: str, alt_names=(), ip_sans=()):
            return vault.pkisecret.SecretBackendCert(
                f"{name}-{suffix}", backend=args.mount_path, name=issuing_role.name, common_name=cn,
                alt_names=list(alt_names), ip_sans=list(ip_sans), ttl=str(args.cert_ttl),
                private_key_format="pkcs8", auto_renew=True, min_seconds_remaining=renew_before,
                # A new lifetime makes a new certificate at once, as pulumi-tls's do (the provider would
                # keep the old one until its window).
                revoke=True, opts=pulumi.ResourceOptions.merge(in_role, pulumi.ResourceOptions(
                    depends_on=[issuing_role], replace_on_changes=["ttl"])),
            )

        sans = args.dns_names if args.server_common_name else args.dns_names[1:]
        cert = issue("server", role, common_name, sans, args.ip_addresses)
        clients = {}
        if args.client_certificates:
            client_role = vault.pkisecret.SecretBackendRole(
                f"{name}-client-role", backend=args.mount_path, name=args.client_role,
                allowed_domains=list(args.client_certificates), allow_bare_domains=True, allow_subdomains=False,
                enforce_hostnames=False, allow_ip_sans=False, server_flag=False, client_flag=True,
                key_type="ec", key_bits=256, max_ttl=str(args.cert_ttl), ttl=str(args.cert_ttl),
                opts=pulumi.ResourceOptions.merge(in_mount, pulumi.ResourceOptions(
                    depends_on=[signed, default_issuer])),
            )
            for user in args.client_certificates:
                issued = issue(f"client-{user}", client_role, user)
                clients[user] = {"cert_pem": pulumi.Output.concat(issued.certificate, "\n", issued.issuing_ca),
                                 "private_key_pem": issued.private_key}
        self.mount_path = pulumi.Output.from_input(args.mount_path)
        # The server presents its certificate and the intermediate, so a client holding only the
        # bootstrap CA builds the chain.
        self.cert_pem = pulumi.Output.concat(cert.certificate, "\n", cert.issuing_ca)
        self.private_key_pem = pulumi.Output.secret(cert.private_key)
        self.ca_chain_pem = chain
        self.client_certs = pulumi.Output.secret(clients)
        self.register_outputs({"mount_path": self.mount_path, "cert_pem": self.cert_pem,
                               "private_key_pem": self.private_key_pem, "ca_chain_pem": self.ca_chain_pem,
                               "client_certs": self.client_certs})
