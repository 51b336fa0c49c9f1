"""Vault (OpenBao) on Kubernetes: the `kubernetes` target of the Vault server.

    vault = VaultKubernetes("vault", VaultKubernetesArgs(namespace="dbcreds", ca_pem=..., cert_pem=...,
                            key_pem=...), opts=pulumi.ResourceOptions(provider=k8s_provider))

A StatefulSet (raft data and audit log on volumes), its Services, a
PodDisruptionBudget, the config in a ConfigMap and TLS in a Secret. Outputs as
`components.vault_server.VaultServer`'s. Initialising and unsealing a server in
a cluster is left to the operator (`bao operator init`), so `admin_token` is
empty here: only the local target initialises its server.
"""

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components import kubernetes_manifests as m

TLS_SECRET, CONFIG_MAP = "openbao-tls", "openbao-config"


@dataclass(frozen=True)
class VaultKubernetesArgs:
    namespace: str
    ca_pem: pulumi.Input[str]
    cert_pem: pulumi.Input[str]
    key_pem: pulumi.Input[str]
    image: str = "openbao/openbao:2.4.1"
    storage: str = "1Gi"
    #: Wait for the pods to be ready and the Services to have endpoints (off for API servers
    #: without nodes, as in the tests).
    await_ready: bool = True


class VaultKubernetes(pulumi.ComponentResource):
    """OpenBao as a StatefulSet, TLS only, with its audit device."""

    address: pulumi.Output[str]
    ca_pem: pulumi.Output[str]
    admin_token: pulumi.Output[str]
    audit_log: pulumi.Output[str]

    def __init__(self, name: str, args: VaultKubernetesArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:vault:VaultKubernetes", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        skip = None if args.await_ready else m.SKIP_AWAIT
        ns, app = args.namespace, m.VAULT_APP
        tls = k8s.core.v1.Secret(
            f"{name}-tls", metadata=m.metadata(TLS_SECRET, ns, app), type="kubernetes.io/tls",
            string_data={"ca.crt": args.ca_pem, "tls.crt": args.cert_pem,
                         "tls.key": pulumi.Output.secret(args.key_pem)},
            opts=child)
        config = k8s.core.v1.ConfigMap(f"{name}-config", metadata=m.metadata(CONFIG_MAP, ns, app),
                                       data={"config.hcl": m.openbao_config()}, opts=child)
        k8s.apps.v1.StatefulSet(
            f"{name}-statefulset", metadata=m.metadata(app, ns, app, skip),
            spec=m.openbao_statefulset(ns, args.image, args.storage, CONFIG_MAP, TLS_SECRET),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[config, tls]))
        ports = {"api": m.VAULT_PORT, "cluster": m.VAULT_CLUSTER_PORT}
        for service_name, headless in ((app, False), (f"{app}-internal", True)):
            service = m.service(service_name, ns, app, ports, headless, skip)
            k8s.core.v1.Service(f"{name}-{service_name}", metadata=service["metadata"], spec=service["spec"],
                                opts=child)
        budget = m.disruption_budget(app, ns, app)
        k8s.policy.v1.PodDisruptionBudget(f"{name}-pdb", metadata=budget["metadata"], spec=budget["spec"],
                                          opts=child)
        self.address = pulumi.Output.from_input(f"https://{m.service_host(app, ns)}:{m.VAULT_PORT}")
        self.ca_pem = pulumi.Output.from_input(args.ca_pem)
        self.admin_token = pulumi.Output.secret("")
        self.audit_log = pulumi.Output.from_input("/openbao/audit/audit.log")
        self.register_outputs({"address": self.address, "ca_pem": self.ca_pem, "admin_token": self.admin_token,
                               "audit_log": self.audit_log})
