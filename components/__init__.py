"""Reusable Pulumi components for a Vault (OpenBao) dynamic-database-credentials stack.

Install the package (`pip install pulumi-dbcreds`, or `pip install .` from a
checkout) and compose what your platform needs, for example:

    from components.bootstrap_pki import BootstrapPki, BootstrapPkiArgs
    from components.local.postgres_server import PostgresServer, PostgresServerArgs
    from components.local.vault_server import VaultServer, VaultServerArgs

    pki = BootstrapPki("bootstrap", BootstrapPkiArgs(ca_common_name="team CA"))
    vault = VaultServer("vault", VaultServerArgs(data_dir="/srv/openbao", port=8200, cluster_port=8201,
                                                 ca_pem=pki.ca_cert_pem, cert_pem=pki.vault_cert_pem,
                                                 key_pem=pki.vault_private_key_pem,
                                                 database_ca_pem=pki.ca_cert_pem))

and then `secrets_engine.DatabaseSecretsEngine`, `client_access.ClientAccess` and
`dynamic.post_deploy_checks.PostDeployChecks` on it (the repository's
`__main__.py` composes them all; `examples/team-reports` adds a team to a
running platform). Each component module holds one `pulumi.ComponentResource`
and its args dataclass; the SQL (`postgres_sql`, `cockroach_sql`), grant specs (`grants`)
and Kubernetes manifests (`kubernetes.manifests`) are pure functions.
"""

__version__ = "0.3.0"
