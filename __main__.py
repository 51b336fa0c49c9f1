"""The platform stack: composes the components from the validated stack config."""

import dataclasses

import pulumi
import pulumi_vault as vault

from components.bootstrap_pki import BootstrapPki, BootstrapPkiArgs
from components.vault.client_access import ClientAccess, ClientAccessArgs
from components.cockroach_certs import COCKROACH_PKI, certs_directory
from components.local.cockroach_cluster import CockroachCluster, CockroachClusterArgs
from components.database_component import DatabaseComponent
from components.vault.database_pki import DatabasePki, DatabasePkiArgs
from components.vault.post_deploy_checks import PostDeployChecks, client_check
from components.local.postgres_server import PostgresServer, PostgresServerArgs
from components.vault.secrets_engine import DatabaseSecretsEngine, DatabaseSecretsEngineArgs
from components.vault.store_key import StoreKeyTransit, StoreKeyTransitArgs
from components.vault_component import VaultComponent
from components.servers.openbao import serving_address
from components.local.vault_server import VaultNodeArgs, VaultServer, VaultServerArgs
from stacks import config as stack_config
from stacks.config import StackConfig


def local_servers(config: StackConfig):
    """OpenBao and PostgreSQL (or CockroachDB) as processes on 127.0.0.1, and the Vault provider.

    With `db_certificates: vault_pki`, Vault comes first: its PKI engine issues
    the database's certificate (CockroachDB's node and client.root ones), from an
    intermediate of the bootstrap CA.
    """
    nodes = config.target.vault_node_ports(config.vault.nodes)
    pki = BootstrapPki("bootstrap", BootstrapPkiArgs(
        ca_common_name=config.pki.ca_common_name, ca_validity_hours=config.pki.ca_validity_hours,
        server_cert_validity_hours=config.pki.cert_validity_hours,
        database_certificate=config.database.certificates == "bootstrap",
        # A cluster's nodes each have a name of their own on their certificate.
        vault_node_names=tuple((f"openbao-{i}",) for i in range(len(nodes))) if len(nodes) > 1 else ((),),
    ))
    # CockroachDB with a CA of its own comes first: Vault's connection verifies against that CA.
    # Every other database's chain ends at the bootstrap CA.
    own_ca = config.database.engine == "cockroachdb" and config.database.certificates == "bootstrap"
    cockroach = CockroachClusterArgs(
        data_dir=f"{config.data_dir}/cockroach", port=config.target.db_port, http_port=config.target.db_http_port,
        database=config.database.name, admin=config.database.admin, grant_specs=config.database.roles,
        ca_validity_hours=config.pki.ca_validity_hours, cert_validity_hours=config.pki.cert_validity_hours,
    )
    if own_ca:
        database = CockroachCluster("db", cockroach)
    vault_server = VaultServer("vault", VaultServerArgs(
        data_dir=f"{config.data_dir}/openbao", ca_pem=pki.ca_cert_pem,
        nodes=tuple(VaultNodeArgs(port, cluster_port, cert.cert_pem, cert.private_key_pem)
                    for (port, cluster_port), cert in zip(nodes, pki.vault_node_certs)),
        database_ca_pem=database.ca_pem if own_ca else pki.ca_cert_pem,
        key_shares=config.vault.key_shares, key_threshold=config.vault.key_threshold, seal=config.vault.seal,
        seal_key=pulumi.Output.secret(config.vault.seal_key) if config.vault.seal_key else None,
    ))
    provider = vault_provider_on(vault_server)
    db_pki = None
    if config.database.certificates == "vault_pki":
        db_pki = DatabasePki("db-pki", DatabasePkiArgs(
            bootstrap_ca_cert_pem=pki.ca_cert_pem, bootstrap_ca_private_key_pem=pki.ca_private_key_pem,
            cert_ttl=config.pki.cert_validity_hours * 3600, intermediate_ttl=config.pki.ca_validity_hours * 3600,
            **(COCKROACH_PKI if config.database.engine == "cockroachdb" else {}),
        ), opts=pulumi.ResourceOptions(providers=[provider], depends_on=[vault_server]))
    if config.database.engine == "postgresql":
        certificate = (pki.database_cert_pem, pki.database_private_key_pem, pki.ca_cert_pem)
        if db_pki is not None:
            certificate = (db_pki.cert_pem, db_pki.private_key_pem, db_pki.ca_chain_pem)
        database = PostgresServer("db", PostgresServerArgs(
            data_dir=f"{config.data_dir}/postgres", port=config.target.db_port, database=config.database.name,
            admin=config.database.admin, cert_pem=certificate[0], key_pem=certificate[1], ca_pem=certificate[2],
            grant_specs=config.database.roles, service_users=config.database.service_user_roles,
        ))
    elif not own_ca:
        database = CockroachCluster("db", dataclasses.replace(
            cockroach, certificates=certs_directory(db_pki), ca_pem=db_pki.ca_chain_pem))
    return vault_server, database, provider


#: Where the clients log in.
APPROLE_MOUNT = "approle"


def vault_layer(config: StackConfig, vault_server: VaultComponent, database: DatabaseComponent,
                provider: vault.Provider):
    """The database secrets engine, one AppRole client per client in config, and the post-deploy
    checks, last, which prove them with real credentials on every `up`."""
    in_vault = pulumi.ResourceOptions(providers=[provider], depends_on=[vault_server, database])
    engine = DatabaseSecretsEngine("engine", DatabaseSecretsEngineArgs(
        specs=config.database.roles, group_roles=database.group_roles, db_host=database.host, db_port=database.port,
        db_name=database.database, admin=database.admin,
        admin_bootstrap_password=database.admin_bootstrap_password,
        bootstrap_password_version=database.admin_bootstrap_password_version,
        ca_file_on_vault=vault_server.database_ca_file, max_ttl_cap=config.database.max_ttl_cap,
        service_users=config.database.service_users, dialect=config.database.engine,
    ), opts=in_vault)
    approle = vault.AuthBackend("approle", type="approle", path=APPROLE_MOUNT,
                                description="AppRole logins of the database clients", opts=in_vault)
    clients = {
        spec.name: ClientAccess(spec.name, ClientAccessArgs(
            role=spec.role, database_mount=engine.mount_path, approle_mount=APPROLE_MOUNT,
            token_ttl=spec.token_ttl, token_max_ttl=spec.token_max_ttl, secret_id_ttl=spec.secret_id_ttl,
        ), opts=pulumi.ResourceOptions.merge(in_vault, pulumi.ResourceOptions(depends_on=[approle])))
        for spec in config.clients
    }
    # A cluster drops a node that stays gone (never below its size) and makes a joined node a voter
    # once it has been healthy a few seconds.
    autopilot = [vault.RaftAutopilot(
        "raft-autopilot", cleanup_dead_servers=True, dead_server_last_contact_threshold="1m0s",
        last_contact_threshold="10s", server_stabilization_time="5s", min_quorum=config.vault.nodes,
        opts=pulumi.ResourceOptions(providers=[provider], depends_on=[vault_server]),
    )] if config.vault.highly_available else []
    max_ttls = {role.name: role.max_ttl for role in config.database.roles}
    checked_clients = [
        client_check(spec.name, clients[spec.name], spec.allowed, spec.forbidden, max_ttls[spec.role])
        for spec in config.clients
    ]
    if config.database.transit_store_key:
        store_key = StoreKeyTransit("store-key", StoreKeyTransitArgs(approle_mount=APPROLE_MOUNT),
                                    opts=pulumi.ResourceOptions.merge(in_vault, pulumi.ResourceOptions(
                                        depends_on=[approle])))
        pulumi.export("database_store_key", {"transit_mount": StoreKeyTransitArgs.mount_path,
                                             "key": store_key.key_name, "role_id": store_key.role_id,
                                             "secret_id": store_key.secret_id})
    checks = PostDeployChecks(
        "checks",
        target={
            "vault_addr": vault_server.address, "vault_ca_pem": vault_server.ca_pem, "db_host": database.host,
            "db_port": database.port, "db_name": database.database, "db_ca_pem": database.ca_pem,
        },
        clients=pulumi.Output.all(*checked_clients), admin=database.admin,
        bootstrap_password=database.admin_bootstrap_password, protected_paths=engine.protected_paths,
        static_creds_paths=engine.static_creds_paths, vault_token=vault_server.admin_token,
        database_pki_mount=DatabasePkiArgs.mount_path if config.database.certificates == "vault_pki" else "",
        # The holdings query reads PostgreSQL's catalogs; CockroachDB's differ.
        group_roles=database.group_roles if config.database.engine == "postgresql" else {},
        node_addresses=vault_server.addresses if config.vault.highly_available else [],
        opts=pulumi.ResourceOptions(depends_on=[engine, *clients.values(), *autopilot]),
    )
    return engine, clients, checks


def kubernetes_servers(config: StackConfig):
    """OpenBao and PostgreSQL as StatefulSets, applied to the kubeconfig's cluster or rendered to a
    folder, and (single-node profile) the Vault provider; None on the cluster profile, whose Vault
    its operator initialises."""
    import pulumi_kubernetes as k8s

    from components.docker.images import image_names
    from components.kubernetes import manifests
    from components.kubernetes.namespace import KubernetesNamespace, KubernetesNamespaceArgs
    from components.kubernetes.postgres import PostgresKubernetes, PostgresKubernetesArgs
    from components.kubernetes.vault import VaultKubernetes, VaultKubernetesArgs

    ns = config.target.namespace
    single_node = config.target.profile == "single-node"
    # The components' names, which their objects' names (Services, pods) start with.
    vault_name, db_name = "vault", "db"
    # The single-node profile's servers are reached at 127.0.0.1: the certificates' default names.
    names = {} if single_node else {
        "vault_dns_names": manifests.server_dns_names(ns, vault_name),
        "database_dns_names": manifests.server_dns_names(ns, db_name)}
    pki = BootstrapPki("bootstrap", BootstrapPkiArgs(
        ca_common_name=config.pki.ca_common_name, ca_validity_hours=config.pki.ca_validity_hours,
        server_cert_validity_hours=config.pki.cert_validity_hours, **names,
    ))
    provider = k8s.Provider("kubernetes", kubeconfig=config.target.kubeconfig,
                            render_yaml_to_directory=config.target.render_dir)
    namespace = KubernetesNamespace("k8s", KubernetesNamespaceArgs(
        name=ns, await_ready=config.target.await_ready, host_network=single_node),
        opts=pulumi.ResourceOptions(provider=provider))
    in_namespace = pulumi.ResourceOptions(providers={"kubernetes": provider}, depends_on=[namespace])
    images = (image_names() if single_node
              else {"openbao": config.target.vault_image, "postgres": config.target.db_image})
    database = PostgresKubernetes(db_name, PostgresKubernetesArgs(
        namespace=ns, ca_pem=pki.ca_cert_pem, cert_pem=pki.database_cert_pem,
        key_pem=pki.database_private_key_pem, database=config.database.name, admin=config.database.admin,
        grant_specs=config.database.roles, service_users=config.database.service_user_roles,
        image=images["postgres"], await_ready=config.target.await_ready, profile=config.target.profile,
        port=config.target.db_port, data_dir=config.data_dir,
    ), opts=in_namespace)
    vault_server = VaultKubernetes(vault_name, VaultKubernetesArgs(
        namespace=ns, ca_pem=pki.ca_cert_pem, cert_pem=pki.vault_cert_pem, key_pem=pki.vault_private_key_pem,
        image=images["openbao"], await_ready=config.target.await_ready, profile=config.target.profile,
        port=config.target.vault_port, cluster_port=config.target.vault_cluster_port, data_dir=config.data_dir,
        key_shares=config.vault.key_shares, key_threshold=config.vault.key_threshold,
    ), opts=in_namespace)
    if not single_node:
        return vault_server, database, None
    return vault_server, database, vault_provider_on(vault_server)


def docker_servers(config: StackConfig):
    """OpenBao and PostgreSQL as containers of the stack's own Docker engine (started by `make up`
    under the data folder), from images built here, and the Vault provider."""
    import pulumi_docker as docker

    from components.docker.daemon import DockerEngine
    from components.docker.postgres import PostgresDocker, PostgresDockerArgs
    from components.docker.vault import VaultDocker, VaultDockerArgs

    pki = BootstrapPki("bootstrap", BootstrapPkiArgs(
        ca_common_name=config.pki.ca_common_name, ca_validity_hours=config.pki.ca_validity_hours,
        server_cert_validity_hours=config.pki.cert_validity_hours,
    ))
    engine = DockerEngine(stack_config.docker_dir(config))
    on_engine = pulumi.ResourceOptions(provider=docker.Provider("docker", host=engine.host))
    database = PostgresDocker("db", PostgresDockerArgs(
        port=config.target.db_port, ca_pem=pki.ca_cert_pem, cert_pem=pki.database_cert_pem,
        key_pem=pki.database_private_key_pem, database=config.database.name, admin=config.database.admin,
        grant_specs=config.database.roles, service_users=config.database.service_user_roles,
        engine_host=engine.host,
    ), opts=on_engine)
    vault_server = VaultDocker("vault", VaultDockerArgs(
        port=config.target.vault_port, cluster_port=config.target.vault_cluster_port, ca_pem=pki.ca_cert_pem,
        cert_pem=pki.vault_cert_pem, key_pem=pki.vault_private_key_pem, database_ca_pem=pki.ca_cert_pem,
        ca_file=f"{config.data_dir}/vault-ca.crt", engine_host=engine.host,
        key_shares=config.vault.key_shares, key_threshold=config.vault.key_threshold,
    ), opts=on_engine)
    return vault_server, database, vault_provider_on(vault_server)


def external_servers(config: StackConfig):
    """Vault and PostgreSQL run by someone else, reached by address with the credentials their
    operators gave (stack secrets); the stack starts nothing, and makes in the database only what it
    makes on its own servers (Vault's admin, the group roles, the service users)."""
    from pathlib import Path

    from components.external import ExternalPostgres, ExternalPostgresArgs, ExternalVault, ExternalVaultArgs

    target = config.target
    vault_server = ExternalVault("vault", ExternalVaultArgs(
        address=target.vault_addr, ca_pem=Path(target.vault_ca_file).read_text(), ca_file=target.vault_ca_file,
        database_ca_file=target.vault_database_ca_file, token=pulumi.Output.secret(target.vault_token),
    ))
    database = ExternalPostgres("db", ExternalPostgresArgs(
        host=target.db_host, port=target.db_port, database=config.database.name,
        ca_pem=Path(target.db_ca_file).read_text(), stack_admin=target.db_stack_admin,
        stack_admin_password=pulumi.Output.secret(target.db_stack_admin_password), admin=config.database.admin,
        grant_specs=config.database.roles, service_users=config.database.service_user_roles,
    ))
    return vault_server, database, vault_provider_on(vault_server)


def vault_provider_on(vault_server: VaultComponent) -> vault.Provider:
    """The Vault provider on the stack's own (initialised, unsealed) server; on a cluster, through the
    node that serves now (`serving_address`: the active one, else a standby, which forwards)."""
    address = pulumi.Output.all(vault_server.addresses, vault_server.ca_file).apply(lambda a: serving_address(*a))
    return vault.Provider(
        "vault", address=address, token=vault_server.admin_token, ca_cert_file=vault_server.ca_file,
        # The admin token itself: no child token per run to create, expire and audit.
        skip_child_token=True,
        # Configured once Vault runs and is unsealed (after a machine restart too).
        opts=pulumi.ResourceOptions(depends_on=[vault_server]),
    )


config = stack_config.load()
servers = {"local": local_servers, "docker": docker_servers, "kubernetes": kubernetes_servers,
           "external": external_servers}[config.target.kind]
vault_server, database, vault_provider = servers(config)
if config.configures_vault:
    engine, clients, checks = vault_layer(config, vault_server, database, vault_provider)
    pulumi.export("database_mount", engine.mount_path)
    pulumi.export("clients", {
        name: {"approle_mount": c.approle_mount, "role_id": c.role_id, "secret_id": c.secret_id,
               "creds_path": c.creds_path}
        for name, c in clients.items()
    })
    pulumi.export("checks", checks.report)
    # For teams' programs on this platform (examples/team-reports): where things are on this host.
    pulumi.export("approle_mount", APPROLE_MOUNT)
    pulumi.export("vault_ca_file", vault_server.ca_file)
    pulumi.export("vault_database_ca_file", vault_server.database_ca_file)
    pulumi.export("db_admin", database.admin)
    if config.target.kind == "local" and config.database.engine == "postgresql":
        pulumi.export("db_data_dir", database.data_dir)
    if config.target.kind == "docker":
        pulumi.export("db_container", database.container)
        pulumi.export("vault_container", vault_server.container)
    if config.target.kind == "kubernetes":
        pulumi.export("k8s_namespace", config.target.namespace)
        pulumi.export("db_pod", database.pod)
        pulumi.export("vault_pod", vault_server.pod)
    pulumi.export("vault_admin_token", vault_server.admin_token)
else:
    # The cluster profile: OpenBao is initialised and unsealed by its operator; the engine, clients
    # and checks are not configured by this stack.
    pulumi.export("vault_operator_steps", vault_server.operator_steps)

pulumi.export("target", config.target.kind)
pulumi.export("vault_addr", vault_server.address)
pulumi.export("vault_addrs", vault_server.addresses)
if config.target.kind == "local" and config.vault.seal == "static":
    # What `bao operator generate-root` takes when no root token is left (README: break glass).
    pulumi.export("vault_recovery_keys", vault_server.recovery_keys)
pulumi.export("vault_ca_pem", vault_server.ca_pem)
pulumi.export("vault_audit_log", vault_server.audit_log)
pulumi.export("db_engine", config.database.engine)
pulumi.export("db_host", database.host)
pulumi.export("db_port", database.port)
pulumi.export("db_name", database.database)
pulumi.export("db_ca_pem", database.ca_pem)
pulumi.export("db_group_roles", database.group_roles)
