"""The platform stack: composes the components from the validated stack config."""

import dataclasses

import pulumi
import pulumi_vault as vault

from components.bootstrap_pki import BootstrapPki, BootstrapPkiArgs
from components.vault.client_access import ClientAccess, ClientAccessArgs
from components.cockroach_certs import COCKROACH_PKI, certs_directory
from components.local.cockroach_node import CockroachNode, CockroachNodeArgs
from components.database_component import DatabaseComponent
from components.vault.database_pki import DatabasePki, DatabasePkiArgs
from components.vault.post_deploy_checks import CheckPlanArgs, PostDeployChecks, client_check
from components.local.postgres_server import PostgresServer, PostgresServerArgs
from components.vault.secrets_engine import DatabaseSecretsEngine, DatabaseSecretsEngineArgs
from components.vault.store_key import StoreKeyTransit, StoreKeyTransitArgs
from components.vault_component import VaultComponent
from components.servers.openbao import serving_address
from components.local.vault_server import VaultNodeArgs, VaultServer, VaultServerArgs
from stacks import config as stack_config
from stacks import preflight
from stacks.config import StackConfig
from stacks.dynamic_users import expired_users_reaped


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
        server_cert_renewal_hours=config.pki.cert_renewal_hours,
        database_certificate=config.database.certificates == "bootstrap",
        # A cluster's nodes each have a name of their own on their certificate.
        vault_node_names=tuple((f"openbao-{i}",) for i in range(len(nodes))) if len(nodes) > 1 else ((),),
    ))
    # CockroachDB with a CA of its own comes first: Vault's connection verifies against that CA.
    # Every other database's chain ends at the bootstrap CA.
    own_ca = config.database.engine == "cockroachdb" and config.database.certificates == "bootstrap"
    cockroach = CockroachNodeArgs(
        data_dir=f"{config.data_dir}/cockroach", port=config.target.db_port, http_port=config.target.db_http_port,
        database=config.database.name, admin=config.database.admin, grant_specs=config.database.roles,
        ca_validity_hours=config.pki.ca_validity_hours, cert_validity_hours=config.pki.cert_validity_hours,
    )
    if own_ca:
        database = CockroachNode("db", cockroach)
    vault_server = VaultServer("vault", VaultServerArgs(
        data_dir=f"{config.data_dir}/openbao", ca_pem=pki.ca_cert_pem,
        nodes=tuple(VaultNodeArgs(port, cluster_port, cert.cert_pem, cert.private_key_pem)
                    for (port, cluster_port), cert in zip(nodes, pki.vault_node_certs)),
        database_ca_pem=database.ca_pem if own_ca else pki.ca_cert_pem,
        key_shares=config.vault.key_shares, key_threshold=config.vault.key_threshold, seal=config.vault.seal,
        seal_key=pulumi.Output.secret(config.vault.seal_key) if config.vault.seal_key else None,
        binary=config.vault.binary,
    ))
    pulumi.export("vault_version", vault_server.version)
    provider = vault_provider_on(vault_server)
    db_pki = None
    if config.database.certificates == "vault_pki":
        db_pki = DatabasePki("db-pki", DatabasePkiArgs(
            bootstrap_ca_cert_pem=pki.ca_cert_pem, bootstrap_ca_private_key_pem=pki.ca_private_key_pem,
            cert_ttl=config.pki.db_cert_validity or config.pki.cert_validity_hours * 3600,
            intermediate_ttl=config.pki.ca_validity_hours * 3600,
            cert_renew_before=config.pki.cert_renew_before,
            intermediate_renewal_hours=config.pki.intermediate_renewal_hours,
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
        database = CockroachNode("db", dataclasses.replace(
            cockroach, certificates=certs_directory(db_pki), ca_pem=db_pki.ca_chain_pem))
    return Servers(vault_server, database, provider)


#: Where the clients log in, unless the stack's vault_prefix names it otherwise (config.vault.names).
APPROLE_MOUNT = "approle"
#: The kubernetes target's components' names, which their objects' names (Services, pods) start with.
K8S_VAULT, K8S_DB = "vault", "db"


@dataclasses.dataclass(frozen=True)
class Servers:
    """What a target runs: Vault, the database, the Vault provider on that Vault (None where the stack
    does not reach it), and on the kubernetes target the options that put a resource in the stack's
    namespace (the in-cluster checks run there)."""

    vault: VaultComponent
    database: DatabaseComponent
    vault_provider: vault.Provider | None
    in_cluster: pulumi.ResourceOptions | None = None


def vault_layer(config: StackConfig, servers: Servers):
    """The database secrets engine, one AppRole client per client in config (and, on the kubernetes
    target, a Kubernetes auth role for each client whose pods log in with their service account), and
    the post-deploy checks, last, which prove them with real credentials on every `up`."""
    vault_server, database, provider = servers.vault, servers.database, servers.vault_provider
    in_vault = pulumi.ResourceOptions(providers=[provider], depends_on=[vault_server, database])
    # Its mounts', auth paths' and policies' names: prefixed where it shares a Vault (vault_prefix).
    names = config.vault.names
    engine = DatabaseSecretsEngine("engine", DatabaseSecretsEngineArgs(
        specs=config.database.roles, group_roles=database.group_roles, db_host=database.host, db_port=database.port,
        db_name=database.database, admin=database.admin,
        admin_bootstrap_password=database.admin_bootstrap_password,
        bootstrap_password_version=database.admin_bootstrap_password_version,
        ca_file_on_vault=vault_server.database_ca_file, max_ttl_cap=config.database.max_ttl_cap,
        service_users=config.database.service_users, dialect=config.database.engine,
        root_rotation_period=config.database.root_rotation_period, mount_path=names.database_mount,
    ), opts=in_vault)
    approle = vault.AuthBackend("approle", type="approle", path=names.approle_mount,
                                description="AppRole logins of the database clients", opts=in_vault)
    clients = {
        spec.name: ClientAccess(spec.name, ClientAccessArgs(
            role=spec.role, database_mount=engine.mount_path, approle_mount=names.approle_mount,
            token_ttl=spec.token_ttl, token_max_ttl=spec.token_max_ttl, secret_id_ttl=spec.secret_id_ttl,
            policy_name=names.client_policy(spec.name),
        ), opts=pulumi.ResourceOptions.merge(in_vault, pulumi.ResourceOptions(depends_on=[approle])))
        for spec in config.clients
    }
    kubernetes = kubernetes_access(config, clients, in_vault)
    teams = team_access(config, servers, pulumi.ResourceOptions.merge(in_vault, pulumi.ResourceOptions(
        depends_on=[approle])))
    # A cluster drops a node that stays gone (never below its size) and makes a joined node a voter
    # once it has been healthy a few seconds.
    autopilot = [vault.RaftAutopilot(
        "raft-autopilot", cleanup_dead_servers=True, dead_server_last_contact_threshold="1m0s",
        last_contact_threshold="10s", server_stabilization_time="5s", min_quorum=config.vault.nodes,
        opts=pulumi.ResourceOptions(providers=[provider], depends_on=[vault_server]),
    )] if config.vault.highly_available else []
    # Every update drops the dynamic users past their VALID UNTIL first (no lease can hold them: one
    # whose lease Vault never wrote), so the checks see a clean database. Its drop SQL is PostgreSQL's:
    # none on CockroachDB.
    reaped = [expired_users_reaped(config, database)] if config.database.engine == "postgresql" else []
    if reaped:
        pulumi.export("expired_users_dropped", reaped[0].dropped)
    max_ttls = {role.name: role.max_ttl for role in config.database.roles}
    checked_clients = [
        client_check(spec.name, clients[spec.name], spec.allowed, spec.forbidden, max_ttls[spec.role])
        for spec in config.clients
    ]
    if config.database.transit_store_key:
        store_key = StoreKeyTransit("store-key", StoreKeyTransitArgs(approle_mount=names.approle_mount),
                                    opts=pulumi.ResourceOptions.merge(in_vault, pulumi.ResourceOptions(
                                        depends_on=[approle])))
        pulumi.export("database_store_key", {"transit_mount": StoreKeyTransitArgs.mount_path,
                                             "key": store_key.key_name, "role_id": store_key.role_id,
                                             "secret_id": store_key.secret_id})
    in_cluster = config.target.kind == "kubernetes"
    plan = check_plan(config, vault_server, database, engine, checked_clients, in_cluster, teams)
    after = [engine, *clients.values(), *autopilot, *reaped, *([kubernetes] if kubernetes else []), *teams.values()]
    if in_cluster:
        checks = in_cluster_checks(config, vault_server, engine, plan, after, in_vault, servers.in_cluster)
    else:
        checks = PostDeployChecks("checks", plan, opts=pulumi.ResourceOptions(depends_on=after))
    return engine, clients, checks, kubernetes, teams


def team_access(config: StackConfig, servers: Servers, in_vault: pulumi.ResourceOptions) -> dict:
    """Each team's access (config's teams; the local target's PostgreSQL only): its group role, its
    connection user and functions, its mount, its policies and its credential, by team."""
    from components.vault.team_access import TeamAccess, TeamAccessArgs

    names, database = config.vault.names, servers.database
    return {
        team.name: TeamAccess(f"team-{team.name}", TeamAccessArgs(
            team=team.name, grant=team.grant, max_ttl=team.max_ttl, data_dir=database.data_dir,
            db_host=database.host, db_port=database.port, db_name=database.database, admin=database.admin,
            ca_file_on_vault=servers.vault.database_ca_file, approle_mount=names.approle_mount,
            mount_path=names(f"team-{team.name}-db"), client_policy_name=names.client_policy(f"team-{team.name}"),
            team_policy_name=names(f"team-{team.name}"), root_rotation_period=config.database.root_rotation_period,
        ), opts=in_vault)
        for team in config.teams
    }


def kubernetes_access(config: StackConfig, clients: dict, in_vault: pulumi.ResourceOptions):
    """Kubernetes auth for the clients that name service accounts (the kubernetes target only: config
    refuses them elsewhere), against the cluster OpenBao runs in, with tokens whose audience is Vault's
    Service; None when no client does."""
    from components.kubernetes.manifests import service_host
    from components.vault.kubernetes_access import KubernetesAccess, KubernetesAccessArgs, KubernetesRoleArgs

    specs = [spec for spec in config.clients if spec.kubernetes]
    if not specs:
        return None
    return KubernetesAccess("kubernetes", KubernetesAccessArgs(
        roles=tuple(KubernetesRoleArgs(
            client=spec.name, policy=clients[spec.name].policy_name, service_accounts=spec.service_accounts,
            namespaces=spec.namespaces, token_ttl=spec.token_ttl, token_max_ttl=spec.token_max_ttl,
        ) for spec in specs),
        audience=service_host(K8S_VAULT, config.target.namespace),
    ), opts=in_vault)


def check_plan(config: StackConfig, vault_server: VaultComponent, database: DatabaseComponent,
               engine: DatabaseSecretsEngine, checked_clients: list, in_cluster: bool = False,
               teams: dict | None = None) -> CheckPlanArgs:
    """What the post-deploy checks prove, and where they reach Vault and the database: from this
    machine, or (in_cluster) from a pod of the cluster, by the Services' names, without a token (its
    run mints one that reads only the static roles' credentials). Each team's connection user's first
    password, which Vault rotated, must be refused."""
    highly_available = config.vault.highly_available
    return CheckPlanArgs(
        target={"vault_addr": vault_server.service_address if in_cluster else vault_server.address,
                "vault_ca_pem": vault_server.ca_pem, "db_host": database.host, "db_port": database.port,
                "db_name": database.database, "db_ca_pem": database.ca_pem},
        clients=checked_clients, admin=database.admin, bootstrap_password=database.admin_bootstrap_password,
        protected_paths=engine.protected_paths, static_creds_paths=engine.static_creds_paths,
        vault_token="" if in_cluster else vault_server.admin_token,
        database_pki_mount=DatabasePkiArgs.mount_path if config.database.certificates == "vault_pki" else "",
        # The holdings query reads PostgreSQL's catalogs; CockroachDB's differ.
        group_roles=database.group_roles if config.database.engine == "postgresql" else {},
        node_addresses=((vault_server.node_addresses if in_cluster else vault_server.addresses)
                        if highly_available else []),
        raft_voters=config.vault.nodes if highly_available else 0,
        root_rotated_at=engine.root_rotated_at,
        # Only a Vault the stack runs has the telemetry block; the in-cluster run reads it from here.
        metrics=config.runs_servers,
        retired_logins=[pulumi.Output.all(t.connection_user, t.bootstrap_password).apply(
            lambda a: {"username": a[0], "password": a[1]}) for t in (teams or {}).values()],
    )


def in_cluster_checks(config: StackConfig, vault_server: VaultComponent, engine: DatabaseSecretsEngine,
                      plan: CheckPlanArgs, after: list, in_vault: pulumi.ResourceOptions,
                      on_cluster: pulumi.ResourceOptions):
    """The post-deploy checks as a Job in the cluster, on `plan` (made for it: `check_plan`): its pod
    gets the clients' logins and, for the static roles, a token of a role that reads their credentials
    only."""
    from components.kubernetes import manifests
    from components.kubernetes.checks import TOKEN_ROLE, InClusterChecks, checks_code
    from components.vault_policies import render_policy
    from stacks import kubernetes_target

    if config.database.service_users:
        reader = vault.Policy("checks-static-reader", name=TOKEN_ROLE, policy=engine.static_creds_paths.apply(
            lambda paths: render_policy([(path, "read") for path in paths])), opts=in_vault)
        after.append(vault.tokenauth.AuthBackendRole(
            "checks-token-role", role_name=TOKEN_ROLE, allowed_policies=[TOKEN_ROLE], orphan=True,
            renewable=False, token_explicit_max_ttl=900, token_no_default_policy=True,
            opts=pulumi.ResourceOptions.merge(in_vault, pulumi.ResourceOptions(depends_on=[reader]))))
    image, built_here = kubernetes_target.images(config)["python"]
    code = checks_code("checks", config.target.namespace, pulumi.ResourceOptions.merge(
        on_cluster, pulumi.ResourceOptions(depends_on=[vault_server])))
    return InClusterChecks(
        "checks", kubeconfig=config.target.kubeconfig, namespace=config.target.namespace,
        image=image, pull=manifests.pull_policy(built_here), code=code,
        plan=plan.props(), vault={"address": vault_server.address, "ca_pem": vault_server.ca_pem,
                                  "admin_token": vault_server.admin_token},
        statefulset=K8S_VAULT, opts=pulumi.ResourceOptions(depends_on=after))


def kubernetes_servers(config: StackConfig):
    """OpenBao (a StatefulSet of `vault_nodes` raft nodes) and PostgreSQL on the kubeconfig's cluster, or
    rendered to a folder; the Vault provider through a port-forward to Vault's Service that the
    program holds open (None when rendering: nothing is reached then)."""
    import pulumi_kubernetes as k8s

    from components.kubernetes import manifests
    from components.kubernetes.namespace import KubernetesNamespace, KubernetesNamespaceArgs
    from components.kubernetes.postgres import PostgresKubernetes, PostgresKubernetesArgs
    from components.kubernetes.vault import VaultKubernetes, VaultKubernetesArgs
    from components.vault.kubernetes_access import KUBERNETES_MOUNT
    from stacks import kubernetes_target

    target = config.target
    ns = target.namespace
    vault_name, db_name = K8S_VAULT, K8S_DB
    pki = BootstrapPki("bootstrap", BootstrapPkiArgs(
        ca_common_name=config.pki.ca_common_name, ca_validity_hours=config.pki.ca_validity_hours,
        server_cert_validity_hours=config.pki.cert_validity_hours,
        server_cert_renewal_hours=config.pki.cert_renewal_hours,
        vault_dns_names=manifests.server_dns_names(ns, vault_name, config.vault.nodes),
        database_dns_names=manifests.server_dns_names(ns, db_name), database_ip_addresses=(),
    ))
    # Rendering reaches no cluster.
    provider = k8s.Provider("kubernetes", kubeconfig=None if target.render_dir else target.kubeconfig,
                            render_yaml_to_directory=target.render_dir)
    # The Kubernetes clients' pods, in their own namespaces, log in with their service account.
    client_namespaces = tuple(dict.fromkeys(n for spec in config.clients for n in spec.namespaces))
    namespace = KubernetesNamespace("k8s", KubernetesNamespaceArgs(name=ns, client_namespaces=client_namespaces),
                                    opts=pulumi.ResourceOptions(provider=provider))
    in_namespace = pulumi.ResourceOptions(providers={"kubernetes": provider}, depends_on=[namespace])
    images = kubernetes_target.images(config)
    database = PostgresKubernetes(db_name, PostgresKubernetesArgs(
        namespace=ns, ca_pem=pki.ca_cert_pem, cert_pem=pki.database_cert_pem,
        key_pem=pki.database_private_key_pem, database=config.database.name, admin=config.database.admin,
        grant_specs=config.database.roles, service_users=config.database.service_user_roles,
        image=images["postgres"][0], image_built_here=images["postgres"][1], storage_class=target.storage_class,
    ), opts=in_namespace)
    forward = None if target.render_dir else kubernetes_target.vault_forward(config).start()
    vault_server = VaultKubernetes(vault_name, VaultKubernetesArgs(
        namespace=ns, ca_pem=pki.ca_cert_pem, cert_pem=pki.vault_cert_pem, key_pem=pki.vault_private_key_pem,
        image=images["openbao"][0], image_built_here=images["openbao"][1], replicas=config.vault.nodes,
        storage_class=target.storage_class, address=forward.address if forward else None,
        ca_file=f"{config.data_dir}/vault-ca.crt", key_shares=config.vault.key_shares,
        key_threshold=config.vault.key_threshold,
        seal_key=pulumi.Output.secret(config.vault.seal_key) if config.vault.seal_key else None,
        mounts=(DatabaseSecretsEngineArgs.mount_path,),
        auth_mounts=(APPROLE_MOUNT, KUBERNETES_MOUNT) if client_namespaces else (APPROLE_MOUNT,),
        # Kubernetes auth reviews the pods' tokens with OpenBao's own (components/vault/kubernetes_access.py).
        token_reviewer=bool(client_namespaces),
    ), opts=in_namespace)
    if forward is None:
        return Servers(vault_server, database, None)
    return Servers(vault_server, database, vault_provider_on(vault_server), in_namespace)


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
        server_cert_renewal_hours=config.pki.cert_renewal_hours,
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
    return Servers(vault_server, database, vault_provider_on(vault_server))


def external_servers(config: StackConfig):
    """Vault and PostgreSQL run by someone else, reached by address with the credentials their
    operators gave (stack secrets); the stack starts nothing, and makes in the database only what it
    makes on its own servers (Vault's admin, the group roles, the service users)."""
    from pathlib import Path

    from components.external import ExternalPostgres, ExternalPostgresArgs, ExternalVault, ExternalVaultArgs
    from stacks.external_target import vault_capabilities

    target = config.target
    vault_server = ExternalVault("vault", ExternalVaultArgs(
        address=target.vault_addr, ca_pem=Path(target.vault_ca_file).read_text(), ca_file=target.vault_ca_file,
        database_ca_file=target.vault_database_ca_file, token=pulumi.Output.secret(target.vault_token),
        required_capabilities=vault_capabilities(config),
    ))
    database = ExternalPostgres("db", ExternalPostgresArgs(
        host=target.db_host, port=target.db_port, database=config.database.name,
        ca_pem=Path(target.db_ca_file).read_text(), stack_admin=target.db_stack_admin,
        stack_admin_password=pulumi.Output.secret(target.db_stack_admin_password), admin=config.database.admin,
        grant_specs=config.database.roles, service_users=config.database.service_user_roles,
    ))
    return Servers(vault_server, database, vault_provider_on(vault_server))


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
preflight.check_machine(config)
servers = {"local": local_servers, "docker": docker_servers, "kubernetes": kubernetes_servers,
           "external": external_servers}[config.target.kind]
stack_servers = servers(config)
vault_server, database = stack_servers.vault, stack_servers.database
if config.configures_vault:
    engine, clients, checks, kubernetes, teams = vault_layer(config, stack_servers)
    pulumi.export("database_mount", engine.mount_path)
    pulumi.export("clients", {
        name: {"approle_mount": c.approle_mount, "role_id": c.role_id, "secret_id": c.secret_id,
               "creds_path": c.creds_path,
               # Where its pods log in (Kubernetes auth): {mount, role, audience, service_accounts, namespaces}.
               **({"kubernetes": kubernetes.roles[name]} if spec.kubernetes else {})}
        for (name, c), spec in zip(clients.items(), config.clients)
    })
    pulumi.export("checks", checks.report)
    # Each team's credential (its role_id and secret_id secret) and what its program writes in.
    pulumi.export("teams", {
        name: {"approle_mount": t.approle_mount, "role_id": t.role_id, "secret_id": t.secret_id,
               "database_mount": t.mount_path, "connection_name": t.connection_name, "group": t.group,
               "client_policy": t.client_policy_name, "approle_role_prefix": t.approle_role_prefix}
        for name, t in teams.items()
    })
    # For teams' programs on this platform (examples/team-reports): where things are on this host.
    pulumi.export("approle_mount", config.vault.names.approle_mount)
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
        pulumi.export("vault_pods", vault_server.pods)
        # Where pods of the cluster reach Vault (vault_addr is this machine's port-forward to it).
        pulumi.export("vault_service_addr", vault_server.service_address)
        # The images the cluster runs, by role: a team's workload runs the same agent (OpenBao's).
        from stacks import kubernetes_target

        pulumi.export("k8s_images", {role: image for role, (image, _) in kubernetes_target.images(config).items()})
    # The stack's own admin token: the root token where the stack keeps one, never on the kubernetes
    # target (its root token is revoked once the stack's admin token exists).
    pulumi.export("vault_admin_token", vault_server.admin_token)
else:
    # Manifests rendered for someone to apply: OpenBao is initialised by its operator; the engine,
    # clients and checks are not configured by this stack.
    pulumi.export("vault_operator_steps", vault_server.operator_steps)

pulumi.export("target", config.target.kind)
pulumi.export("vault_addr", vault_server.address)
pulumi.export("vault_addrs", vault_server.addresses)
if config.configures_vault and config.runs_servers and config.vault.seal == "static":
    # What `bao operator generate-root` takes when no root token is left (docs/kubernetes.md: break glass).
    pulumi.export("vault_recovery_keys", vault_server.recovery_keys)
pulumi.export("vault_ca_pem", vault_server.ca_pem)
pulumi.export("vault_audit_log", vault_server.audit_log)
pulumi.export("db_engine", config.database.engine)
pulumi.export("db_host", database.host)
pulumi.export("db_port", database.port)
pulumi.export("db_name", database.database)
pulumi.export("db_ca_pem", database.ca_pem)
pulumi.export("db_group_roles", database.group_roles)
