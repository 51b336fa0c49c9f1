"""The platform stack: composes the components from the validated stack config."""

import pulumi
import pulumi_vault as vault

from components.database_component import DatabaseComponent
from components.vault.client_access import ClientAccess, ClientAccessArgs
from components.vault.database_pki import DatabasePkiArgs
from components.vault.post_deploy_checks import CheckPlanArgs, PostDeployChecks, client_check
from components.vault.secrets_engine import DatabaseSecretsEngine, DatabaseSecretsEngineArgs
from components.vault.store_key import StoreKeyTransit, StoreKeyTransitArgs
from components.vault_component import VaultComponent
from stacks import config as stack_config
from stacks import preflight, targets
from stacks.config import StackConfig
from stacks.dynamic_users import expired_users_reaped
from stacks.servers import Servers


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
    # A target whose servers run in a cluster runs the checks there too (from a pod, by Service names).
    in_cluster = servers.in_cluster is not None
    plan = check_plan(config, vault_server, database, engine, checked_clients, in_cluster, teams)
    after = [engine, *clients.values(), *autopilot, *reaped, *([kubernetes] if kubernetes else []), *teams.values()]
    if in_cluster:
        checks = in_cluster_checks(config, vault_server, engine, plan, after, in_vault, servers.in_cluster)
    else:
        checks = PostDeployChecks("checks", plan, opts=pulumi.ResourceOptions(depends_on=after))
    return engine, clients, checks, kubernetes, teams


def team_access(config: StackConfig, servers: Servers, in_vault: pulumi.ResourceOptions) -> dict:
    """Each team's access (config's teams; PostgreSQL on the targets whose database gives the stack a
    way in, `stack_access`): its group role, its connection user and functions, its mount, its
    policies and its credential, by team."""
    from components.vault.team_access import TeamAccess, TeamAccessArgs

    names, database = config.vault.names, servers.database
    return {
        team.name: TeamAccess(f"team-{team.name}", TeamAccessArgs(
            team=team.name, grant=team.grant, max_ttl=team.max_ttl, stack_access=database.stack_access,
            db_host=database.host, db_port=database.port, db_name=database.database, admin=database.owner,
            ca_file_on_vault=servers.vault.database_ca_file, approle_mount=names.approle_mount,
            mount_path=names.team_mount(team.name), client_policy_name=names.team_client_policy(team.name),
            team_policy_name=names.team_policy(team.name), root_rotation_period=config.database.root_rotation_period,
        ), opts=in_vault)
        for team in config.teams
    }


def kubernetes_access(config: StackConfig, clients: dict, in_vault: pulumi.ResourceOptions):
    """Kubernetes auth for the clients that name service accounts (the kubernetes target only: config
    refuses them elsewhere), against the cluster OpenBao runs in, with tokens whose audience is Vault's
    Service; None when no client does."""
    from components.kubernetes.manifests import service_host
    from components.vault.kubernetes_access import KubernetesAccess, KubernetesAccessArgs, KubernetesRoleArgs
    from stacks import kubernetes_target

    specs = [spec for spec in config.clients if spec.kubernetes]
    if not specs:
        return None
    return KubernetesAccess("kubernetes", KubernetesAccessArgs(
        roles=tuple(KubernetesRoleArgs(
            client=spec.name, policy=clients[spec.name].policy_name, service_accounts=spec.service_accounts,
            namespaces=spec.namespaces, token_ttl=spec.token_ttl, token_max_ttl=spec.token_max_ttl,
        ) for spec in specs),
        audience=service_host(kubernetes_target.VAULT_NAME, config.target.namespace),
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
                "db_name": database.database, "db_ca_pem": database.ca_pem,
                # The external target's vault_namespace, where the clients log in and issue.
                **({"vault_namespace": ns} if (ns := getattr(config.target, "vault_namespace", "")) else {})},
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
        statefulset=kubernetes_target.VAULT_NAME, opts=pulumi.ResourceOptions(depends_on=after))


config = stack_config.load()
preflight.check_machine(config)
target = targets.of(config)
stack_servers = target.servers(config)
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
    for name, value in target.exports(config, stack_servers).items():
        pulumi.export(name, value)
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
