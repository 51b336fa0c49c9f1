"""PostgreSQL on Kubernetes: the `kubernetes` target of the database server.

    db = PostgresKubernetes("db", PostgresKubernetesArgs(namespace="dbcreds", ca_pem=..., cert_pem=...,
                            key_pem=..., grant_specs=specs), opts=pulumi.ResourceOptions(provider=k8s_provider))

A StatefulSet of the official `postgres` image (its initdb hook runs the
stack's bootstrap SQL once: admin, database, demo schema, group roles), its
Services, a PodDisruptionBudget, TLS and the passwords in Secrets, and the
config in a ConfigMap (`components.kubernetes_namespace` holds the network
policies that let only Vault and labelled clients reach it). Outputs as `components.postgres_server.PostgresServer`'s.
"""

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components import kubernetes_manifests as m
from components.database_component import DatabaseComponent, new_password
from components.grants import GrantSpec
from components.postgres_sql import group_role_name

TLS_SECRET, PASSWORD_SECRET, CONFIG_MAP = "postgres-tls", "postgres-passwords", "postgres-bootstrap"


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


class PostgresKubernetes(DatabaseComponent):
    """PostgreSQL 15 as a StatefulSet: TLS and SCRAM only, reached only by Vault and labelled clients."""

    def __init__(self, name: str, args: PostgresKubernetesArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:database:PostgresKubernetes", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        skip = None if args.await_ready else m.SKIP_AWAIT
        ns, app = args.namespace, m.DB_APP
        admin_password = new_password(f"{name}-admin-bootstrap", self)
        superuser_password = new_password(f"{name}-superuser", self)
        secrets = [
            k8s.core.v1.Secret(
                f"{name}-tls", metadata=m.metadata(TLS_SECRET, ns, app), type="kubernetes.io/tls",
                string_data={"ca.crt": args.ca_pem, "tls.crt": args.cert_pem,
                             "tls.key": pulumi.Output.secret(args.key_pem)},
                opts=child),
            k8s.core.v1.Secret(
                f"{name}-passwords", metadata=m.metadata(PASSWORD_SECRET, ns, app),
                string_data={"admin-password": admin_password,
                             "superuser-password": superuser_password},
                opts=child),
            k8s.core.v1.ConfigMap(
                f"{name}-bootstrap", metadata=m.metadata(CONFIG_MAP, ns, app),
                data={"postgresql.conf": m.postgres_conf(), "pg_hba.conf": m.pg_hba(), "init.sh": m.INIT_SCRIPT,
                      "bootstrap.sql": m.bootstrap_sql(args.admin, args.database, args.grant_specs,
                                                       args.group_prefix)},
                opts=child),
        ]
        statefulset = k8s.apps.v1.StatefulSet(
            f"{name}-statefulset", metadata=m.metadata(app, ns, app, skip),
            spec=m.postgres_statefulset(ns, args.image, args.storage, CONFIG_MAP, TLS_SECRET, PASSWORD_SECRET),
            opts=pulumi.ResourceOptions(parent=self, depends_on=secrets))
        for service_name, headless in ((app, False), (f"{app}-internal", True)):
            service = m.service(service_name, ns, app, {"postgres": m.DB_PORT}, headless, skip)
            k8s.core.v1.Service(f"{name}-{service_name}", metadata=service["metadata"], spec=service["spec"],
                                opts=child)
        budget = m.disruption_budget(app, ns, app)
        k8s.policy.v1.PodDisruptionBudget(f"{name}-pdb", metadata=budget["metadata"], spec=budget["spec"],
                                          opts=child)
        self._register_database(
            host=m.service_host(app, ns), port=m.DB_PORT, database=args.database, admin=args.admin,
            admin_bootstrap_password=admin_password, ca_pem=args.ca_pem,
            group_roles=statefulset.id.apply(
                lambda _: {s.name: group_role_name(args.group_prefix, s) for s in args.grant_specs}),
        )
