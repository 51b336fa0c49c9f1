"""Reusable Pulumi components for a Vault (OpenBao) dynamic-database-credentials stack.

The `pulumi-dbcreds` package is not published: install it from a checkout of
this repository (`pip install /path/to/checkout`, or `pip install -e .` in it),
or build its wheel there (`pip wheel --no-deps .`) and install that. Then
compose what your platform needs, for example:

    from components.bootstrap_pki import BootstrapPki, BootstrapPkiArgs
    from components.local.postgres_server import PostgresServer, PostgresServerArgs
    from components.local.vault_server import VaultNodeArgs, VaultServer, VaultServerArgs

    pki = BootstrapPki("bootstrap", BootstrapPkiArgs(ca_common_name="team CA"))
    vault = VaultServer("vault", VaultServerArgs(
        data_dir="/srv/openbao",
        nodes=(VaultNodeArgs(8200, 8201, pki.vault_cert_pem, pki.vault_private_key_pem),),
        ca_pem=pki.ca_cert_pem, database_ca_pem=pki.ca_cert_pem))

and then `vault.secrets_engine.DatabaseSecretsEngine`, `vault.client_access.ClientAccess` and
`vault.post_deploy_checks.PostDeployChecks` on it (the repository's
`__main__.py` composes them all; `examples/team-reports` adds a team to a
running platform). Each component module holds one `pulumi.ComponentResource`
and its args dataclass; the SQL (`postgres_sql`, `cockroach_sql`), the grant specs' validation
(`grants`; the specs are plain data in `grant_specs`) and Kubernetes manifests
(`kubernetes.manifests`) are pure functions.
"""

__version__ = "0.3.0"
