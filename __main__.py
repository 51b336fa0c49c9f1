"""The platform stack: composes the components from the validated stack config."""

import pulumi

from components.bootstrap_pki import BootstrapPki, BootstrapPkiArgs
from stacks import config as stack_config

config = stack_config.load()

pki = BootstrapPki(
    "bootstrap",
    BootstrapPkiArgs(
        ca_common_name=config.ca_common_name,
        ca_validity_hours=config.ca_validity_hours,
        vault_cert_validity_hours=config.cert_validity_hours,
    ),
)

pulumi.export("vault_ca_pem", pki.ca_cert_pem)
pulumi.export("vault_tls_cert_pem", pki.vault_cert_pem)
