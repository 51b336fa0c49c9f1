"""The platform stack: composes the components from the validated stack config."""

import pulumi

from components import kubernetes_manifests
from components.bootstrap_pki import BootstrapPki, BootstrapPkiArgs
from components.cockroach_cluster import CockroachCluster, CockroachClusterArgs
from components.postgres_server import PostgresServer, PostgresServerArgs
from components.vault_server import VaultServer, VaultServerArgs
from stacks import config as stack_config
from stacks.config import StackConfig


def local_servers(config: StackConfig):
    """OpenBao and PostgreSQL (or CockroachDB) as processes on 127.0.0.1."""
    pki = BootstrapPki("bootstrap", BootstrapPkiArgs(
        ca_common_name=config.ca_common_name, ca_validity_hours=config.ca_validity_hours,
        server_cert_validity_hours=config.cert_validity_hours,
    ))
    vault = VaultServer("vault", VaultServerArgs(
        data_dir=f"{config.data_dir}/openbao", port=config.vault_port, cluster_port=config.vault_cluster_port,
        ca_pem=pki.ca_cert_pem, cert_pem=pki.vault_cert_pem, key_pem=pki.vault_private_key_pem,
        key_shares=config.vault_key_shares, key_threshold=config.vault_key_threshold,
    ))
    if config.db_engine == "cockroachdb":
        database = CockroachCluster("db", CockroachClusterArgs(
            data_dir=f"{config.data_dir}/cockroach", port=config.db_port, http_port=config.db_http_port,
            database=config.db_name, grant_specs=config.roles,
            ca_validity_hours=config.ca_validity_hours, cert_validity_hours=config.cert_validity_hours,
        ))
    else:
        database = PostgresServer("db", PostgresServerArgs(
            data_dir=f"{config.data_dir}/postgres", port=config.db_port, database=config.db_name,
            ca_pem=pki.ca_cert_pem, cert_pem=pki.database_cert_pem, key_pem=pki.database_private_key_pem,
            grant_specs=config.roles, service_users=tuple((u.username, u.role) for u in config.service_users),
        ))
    return vault, database


def kubernetes_servers(config: StackConfig):
    """OpenBao and PostgreSQL as StatefulSets, applied to the kubeconfig's cluster or rendered to a folder."""
    import pulumi_kubernetes as k8s

    from components.kubernetes_namespace import KubernetesNamespace, KubernetesNamespaceArgs
    from components.postgres_kubernetes import PostgresKubernetes, PostgresKubernetesArgs
    from components.vault_kubernetes import VaultKubernetes, VaultKubernetesArgs

    ns = config.k8s_namespace
    pki = BootstrapPki("bootstrap", BootstrapPkiArgs(
        ca_common_name=config.ca_common_name, ca_validity_hours=config.ca_validity_hours,
        server_cert_validity_hours=config.cert_validity_hours,
        vault_dns_names=kubernetes_manifests.server_dns_names(ns, kubernetes_manifests.VAULT_APP),
        database_dns_names=kubernetes_manifests.server_dns_names(ns, kubernetes_manifests.DB_APP),
    ))
    provider = k8s.Provider("kubernetes", render_yaml_to_directory=config.k8s_render_dir)
    namespace = KubernetesNamespace("k8s", KubernetesNamespaceArgs(name=ns, await_ready=config.k8s_await_ready),
                                    opts=pulumi.ResourceOptions(provider=provider))
    in_namespace = pulumi.ResourceOptions(providers={"kubernetes": provider}, depends_on=[namespace])
    vault = VaultKubernetes("vault", VaultKubernetesArgs(
        namespace=ns, ca_pem=pki.ca_cert_pem, cert_pem=pki.vault_cert_pem, key_pem=pki.vault_private_key_pem,
        image=config.vault_image, await_ready=config.k8s_await_ready,
    ), opts=in_namespace)
    database = PostgresKubernetes("db", PostgresKubernetesArgs(
        namespace=ns, ca_pem=pki.ca_cert_pem, cert_pem=pki.database_cert_pem,
        key_pem=pki.database_private_key_pem, database=config.db_name, grant_specs=config.roles,
        image=config.db_image, await_ready=config.k8s_await_ready,
    ), opts=in_namespace)
    return vault, database


config = stack_config.load()
vault_server, database = kubernetes_servers(config) if config.target == "kubernetes" else local_servers(config)

pulumi.export("target", config.target)
pulumi.export("vault_addr", vault_server.address)
pulumi.export("vault_ca_pem", vault_server.ca_pem)
pulumi.export("vault_admin_token", vault_server.admin_token)
pulumi.export("vault_audit_log", vault_server.audit_log)
pulumi.export("db_engine", config.db_engine)
pulumi.export("db_host", database.host)
pulumi.export("db_port", database.port)
pulumi.export("db_name", database.database)
pulumi.export("db_ca_pem", database.ca_pem)
pulumi.export("db_group_roles", database.group_roles)
