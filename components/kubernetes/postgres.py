"""PostgreSQL on Kubernetes: the `kubernetes` target of the database server.

    db = PostgresKubernetes("db", PostgresKubernetesArgs(namespace="dbcreds", ca_pem=..., cert_pem=...,
                            key_pem=..., image=..., grant_specs=specs),
                            opts=pulumi.ResourceOptions(provider=k8s_provider))

A StatefulSet of the PostgreSQL image built here (its start script runs the
stack's bootstrap SQL once, when the volume is new: admin, database, demo
schema, group roles, service users), its Services, TLS and the admin's first
password in Secrets, the config and scripts in a ConfigMap, each named after the
component (`db`, `db-tls`, `db-passwords`, `db-bootstrap`: two components share a
namespace) (`components.kubernetes.namespace` holds the network policies that
let only Vault and labelled clients reach it). It listens on its pod's address,
TLS and SCRAM only; its certificate names its Service (verify-full). Outputs as
`components.local.postgres_server.PostgresServer`'s, and `pod`.
"""

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.defaults import DATABASE, DB_ADMIN, GROUP_PREFIX
from components.database_component import DatabaseComponent, new_password
from components.grant_specs import GrantSpec
from components.kubernetes import manifests as m
from components.postgres_sql import group_role_name


@dataclass(frozen=True)
class PostgresKubernetesArgs:
    namespace: str
    ca_pem: pulumi.Input[str]
    cert_pem: pulumi.Input[str]
    key_pem: pulumi.Input[str]
    image: str
    #: The image was built here and imported into the nodes (never pulled).
    image_built_here: bool = True
    database: str = DATABASE
    admin: str = DB_ADMIN
    grant_specs: tuple[GrantSpec, ...] = ()
    group_prefix: str = GROUP_PREFIX
    storage: str = "1Gi"
    #: None: the cluster's default StorageClass.
    storage_class: Optional[str] = None
    #: Pre-existing service users for Vault static roles: user name -> the grant spec whose group it joins.
    service_users: tuple[tuple[str, str], ...] = ()


class PostgresKubernetes(DatabaseComponent):
    """PostgreSQL 15 as a StatefulSet: TLS and SCRAM only, reached only by Vault and labelled clients.
    `pod` is its pod's name."""

    pod: pulumi.Output[str]

    def __init__(self, name: str, args: PostgresKubernetesArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:database:PostgresKubernetes", name, None, opts)
        specs = {spec.name for spec in args.grant_specs}
        for user, spec_name in args.service_users:
            if spec_name not in specs:
                raise ValueError(f"service user {user!r}: no grant spec named {spec_name!r}")
        child = pulumi.ResourceOptions(parent=self)
        ns, app = args.namespace, m.DB_APP
        tls_secret, password_secret, config_map = f"{name}-tls", f"{name}-passwords", f"{name}-bootstrap"
        admin_password = new_password(f"{name}-admin-bootstrap", self)
        # The server's config is rendered as on every target (components.servers.postgres).
        files = m.postgres_bootstrap_files(args.admin, args.database, args.grant_specs, args.group_prefix,
                                           args.service_users)
        made = [
            k8s.core.v1.Secret(
                f"{name}-tls", metadata=m.metadata(tls_secret, ns, app, name), type="kubernetes.io/tls",
                string_data={"ca.crt": args.ca_pem, "tls.crt": args.cert_pem,
                             "tls.key": pulumi.Output.secret(args.key_pem)},
                opts=child),
            k8s.core.v1.Secret(f"{name}-passwords", metadata=m.metadata(password_secret, ns, app, name),
                               string_data={"admin-password": admin_password}, opts=child),
            k8s.core.v1.ConfigMap(f"{name}-bootstrap", metadata=m.metadata(config_map, ns, app, name), data=files,
                                  opts=child),
        ]
        spec = m.postgres_statefulset(name, args.image, m.pull_policy(args.image_built_here), args.storage,
                                      args.storage_class, config_map, tls_secret, password_secret)
        k8s.apps.v1.StatefulSet(
            f"{name}-statefulset", metadata=m.metadata(name, ns, app, name), spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=made))
        for service_name, headless in ((name, False), (m.internal_service(name), True)):
            service = m.service(service_name, ns, app, name, {"postgres": m.DB_PORT}, headless)
            k8s.core.v1.Service(f"{service_name}-service", metadata=service["metadata"], spec=service["spec"],
                                opts=child)
        self._register_database(
            host=m.service_host(name, ns), port=m.DB_PORT, database=args.database, admin=args.admin,
            admin_bootstrap_password=admin_password, ca_pem=args.ca_pem,
            # Its bootstrap makes them; what uses them waits for this component (the StatefulSet ready).
            # Known at a first preview, so that the gate judges the roles' SQL there.
            group_roles={s.name: group_role_name(args.group_prefix, s) for s in args.grant_specs},
            pod=pulumi.Output.from_input(m.pod_names(name, 1)[0]),
        )
