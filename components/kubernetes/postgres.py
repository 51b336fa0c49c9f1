"""PostgreSQL on Kubernetes: the `kubernetes` target of the database server.

    db = PostgresKubernetes("db", PostgresKubernetesArgs(namespace="dbcreds", ca_pem=..., cert_pem=...,
                            key_pem=..., grant_specs=specs), opts=pulumi.ResourceOptions(provider=k8s_provider))

A StatefulSet of the official `postgres` image (its initdb hook runs the
stack's bootstrap SQL once: admin, database, demo schema, group roles), its
Services, a PodDisruptionBudget, TLS and the passwords in Secrets, and the
config in a ConfigMap, each named after the component (`db`, `db-tls`,
`db-passwords`, `db-bootstrap`: two components share a namespace) (`components.kubernetes.namespace` holds the network
policies that let only Vault and labelled clients reach it). Outputs as `components.local.postgres_server.PostgresServer`'s.
"""

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes import manifests as m
from components.servers import postgres_image
from components.database_component import DatabaseComponent, new_password
from components.grants import GrantSpec
from components.kubernetes.volumes import node_volumes
from components.servers.postgres import render_pg_hba, render_pg_ident, render_postgresql_conf
from components.postgres_sql import bootstrap_sql, group_role_name



@dataclass(frozen=True)
class PostgresKubernetesArgs:
    namespace: str
    ca_pem: pulumi.Input[str]
    cert_pem: pulumi.Input[str]
    key_pem: pulumi.Input[str]
    database: str = "app"
    admin: str = "dbcreds_admin"
    grant_specs: tuple[GrantSpec, ...] = ()
    group_prefix: str = "dbcreds_group"
    image: str = "postgres:15"
    storage: str = "1Gi"
    #: Wait for the pods to be ready and the Services to have endpoints (off for API servers
    #: without nodes, as in the tests).
    await_ready: bool = True
    #: Pre-existing service users for Vault static roles: user name -> the grant spec whose group it joins.
    service_users: tuple[tuple[str, str], ...] = ()
    #: One of manifests.PROFILES; the settings below are the single-node profile's (whose
    #: image is the one built here: `components.servers.postgres_image`).
    profile: str = "cluster"
    port: int = m.DB_PORT
    #: This machine's folder for the volume.
    data_dir: str = ""


class PostgresKubernetes(DatabaseComponent):
    """PostgreSQL 15 as a StatefulSet: TLS and SCRAM only, reached only by Vault and labelled clients.
    `pod` is its pod's name."""

    pod: pulumi.Output[str]

    def __init__(self, name: str, args: PostgresKubernetesArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:database:PostgresKubernetes", name, None, opts)
        if args.profile not in m.PROFILES:
            raise ValueError(f"profile must be one of {', '.join(m.PROFILES)}, got {args.profile!r}")
        specs = {spec.name for spec in args.grant_specs}
        for user, spec_name in args.service_users:
            if spec_name not in specs:
                raise ValueError(f"service user {user!r}: no grant spec named {spec_name!r}")
        child = pulumi.ResourceOptions(parent=self)
        single_node = args.profile == "single-node"
        skip = None if args.await_ready else m.SKIP_AWAIT
        if single_node:
            skip = m.NODE_AWAIT
        ns, app = args.namespace, m.DB_APP
        tls_secret, password_secret, config_map = f"{name}-tls", f"{name}-passwords", f"{name}-bootstrap"
        admin_password = new_password(f"{name}-admin-bootstrap", self)
        passwords = {"admin-password": admin_password}
        if not single_node:
            # The upstream image's entrypoint wants one; the image built here reaches it over the socket only.
            passwords["superuser-password"] = new_password(f"{name}-superuser", self)
        bootstrap = bootstrap_sql(args.admin, args.database, args.grant_specs, args.group_prefix,
                                        args.service_users)
        if single_node:
            files = {"start.sh": postgres_image.pod_start_script("/bootstrap-tls", "/bootstrap-secrets/admin-password"),
                     "postgres.sh": postgres_image.POSTGRES_SCRIPT,
                     "postgresql.conf": render_postgresql_conf(args.port, m.LOOPBACK_HOST, postgres_image.RUN),
                     "pg_hba.conf": render_pg_hba(), "pg_ident.conf": render_pg_ident("postgres"),
                     "bootstrap.sql": bootstrap}
        else:
            files = {"postgresql.conf": m.postgres_conf(), "pg_hba.conf": m.pg_hba(), "init.sh": m.INIT_SCRIPT,
                     "bootstrap.sql": bootstrap}
        secrets = [
            k8s.core.v1.Secret(
                f"{name}-tls", metadata=m.metadata(tls_secret, ns, app, name), type="kubernetes.io/tls",
                string_data={"ca.crt": args.ca_pem, "tls.crt": args.cert_pem,
                             "tls.key": pulumi.Output.secret(args.key_pem)},
                opts=child),
            k8s.core.v1.Secret(f"{name}-passwords", metadata=m.metadata(password_secret, ns, app, name),
                               string_data=passwords, opts=child),
            k8s.core.v1.ConfigMap(f"{name}-bootstrap", metadata=m.metadata(config_map, ns, app, name), data=files,
                                  opts=child),
        ]
        if single_node:
            volumes = node_volumes(self, name, ns, app, ("data",), args.data_dir, args.storage)
            spec = m.postgres_node_statefulset(name, args.image, args.storage, config_map, tls_secret,
                                               password_secret, args.port, postgres_image.POSTGRES_UID, postgres_image)
            depends_on = [*secrets, *volumes.values()]
        else:
            spec = m.postgres_statefulset(name, ns, args.image, args.storage, config_map, tls_secret, password_secret)
            depends_on = secrets
        statefulset = k8s.apps.v1.StatefulSet(
            f"{name}-statefulset", metadata=m.metadata(name, ns, app, name, skip), spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on))
        if not single_node:
            for service_name, headless in ((name, False), (m.internal_service(name), True)):
                service = m.service(service_name, ns, app, name, {"postgres": m.DB_PORT}, headless, skip)
                k8s.core.v1.Service(f"{service_name}-service", metadata=service["metadata"], spec=service["spec"],
                                    opts=child)
            budget = m.disruption_budget(name, ns, app)
            k8s.policy.v1.PodDisruptionBudget(f"{name}-pdb", metadata=budget["metadata"], spec=budget["spec"],
                                              opts=child)
        self._register_database(
            host=m.LOOPBACK_HOST if single_node else m.service_host(name, ns),
            port=args.port if single_node else m.DB_PORT, database=args.database, admin=args.admin,
            admin_bootstrap_password=admin_password, ca_pem=args.ca_pem,
            group_roles=statefulset.id.apply(
                lambda _: {s.name: group_role_name(args.group_prefix, s) for s in args.grant_specs}),
            pod=pulumi.Output.from_input(m.first_pod(name)),
        )
