"""Every stack setting's default, written once.

stacks/config.py validates with these, toolchain/stack_file.py answers with them for a setting a
stack file leaves out, and Pulumi.yaml's schema repeats them (Pulumi hands its defaults to every
stack; tests/unit/test_config.py holds the two equal). Two have no fixed default: data_dir
(.data/<stack>) and vault_cluster_port (vault_port + vault_nodes, after every node's API port); an
empty root_rotation_period is the environment's max_rotation_period, an empty cert_renew_before or
intermediate_renew_before a tenth of the certificate's lifetime, an empty db_cert_validity
cert_validity_hours. Standard library only.
"""

from components.defaults import CA_VALIDITY_HOURS, CERT_VALIDITY_HOURS, DATABASE, DB_ADMIN

DEFAULTS = {
    "target": "local",
    # pki
    "ca_common_name": "dbcreds CA", "ca_validity_hours": CA_VALIDITY_HOURS, "cert_validity_hours": CERT_VALIDITY_HOURS,
    # Empty: a tenth of the certificate's lifetime.
    "cert_renew_before": "", "intermediate_renew_before": "",
    # Empty: cert_validity_hours.
    "db_cert_validity": "",
    # vault
    "vault_port": 18200, "vault_nodes": 1, "vault_seal": "auto", "vault_seal_key": "", "vault_key_shares": 1,
    "vault_key_threshold": 1, "vault_prefix": "", "vault_binary": "",
    # database
    "db_engine": "postgresql", "db_port": 15432, "db_http_port": 15433, "db_name": DATABASE, "db_admin": DB_ADMIN,
    "db_certificates": "auto", "max_ttl_cap": "24h", "max_rotation_period": "30d", "root_rotation_period": "",
    "transit_store_key": False, "service_users": {}, "clients": {}, "teams": {},
    # the kubernetes target
    "k8s_namespace": "dbcreds", "k8s_render_dir": "", "k8s_kubeconfig": "", "k8s_storage_class": "",
    "vault_image": "", "db_image": "", "python_image": "",
    # the external target
    "vault_addr": "", "vault_ca_file": "", "vault_database_ca_file": "", "db_host": "", "db_ca_file": "",
    "db_stack_admin": "", "vault_namespace": "",
}
