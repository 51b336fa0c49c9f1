"""Vault (OpenBao) on Kubernetes: the `kubernetes` target of the Vault server.

    vault = VaultKubernetes("vault", VaultKubernetesArgs(namespace="dbcreds", ca_pem=..., cert_pem=...,
                            key_pem=...), opts=pulumi.ResourceOptions(provider=k8s_provider))

A StatefulSet (raft data and audit log on volumes), the config in a ConfigMap
and TLS in a Secret, each named after the component (`vault`, `vault-config`,
`vault-tls`: two components share a namespace), in one of two profiles (`manifests.PROFILES`):
- `cluster`: Services and a PodDisruptionBudget, the upstream image. Initialising
  and unsealing it is its operator's: it has no `admin_token` or `ca_file`
  (nothing can be configured in it yet), and `operator_steps` says what to do.
- `single-node`: the node is this machine (a test cluster). The pod runs the
  image built here on the host's network at 127.0.0.1:`port`, its volumes are
  local ones under `data_dir`, and the stack initialises and unseals it through
  that address, and unseals it again whenever a new pod comes up sealed: outputs
  as every `VaultComponent`'s.
"""

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes import manifests as m
from components.servers.server_running import keeper_name
from components.kubernetes.volumes import node_volumes
from components.servers.openbao import render_config
from components.servers.openbao_api import IN_CONTAINER, OpenBaoInit, VaultUnsealed
from components.options import register_outputs
from components.vault_component import VaultComponent



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
    #: One of manifests.PROFILES; the settings below are the single-node profile's.
    profile: str = "cluster"
    port: int = m.VAULT_PORT
    cluster_port: int = m.VAULT_CLUSTER_PORT
    #: This machine's folder for the volumes and the listener's CA file (the Vault provider takes a file).
    data_dir: str = ""
    key_shares: int = 1
    key_threshold: int = 1


class VaultKubernetes(VaultComponent):
    """OpenBao as a StatefulSet, TLS only, with its audit device. `pod` is its pod's name;
    `operator_steps` (cluster profile only) what its operator must do before it is a Vault to use."""

    pod: pulumi.Output[str]
    operator_steps: pulumi.Output[str]

    def __init__(self, name: str, args: VaultKubernetesArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:vault:VaultKubernetes", name, None, opts)
        if args.profile not in m.PROFILES:
            raise ValueError(f"profile must be one of {', '.join(m.PROFILES)}, got {args.profile!r}")
        child = pulumi.ResourceOptions(parent=self)
        ns, app = args.namespace, m.VAULT_APP
        tls = k8s.core.v1.Secret(
            f"{name}-tls", metadata=m.metadata(f"{name}-tls", ns, app, name), type="kubernetes.io/tls",
            string_data={"ca.crt": args.ca_pem, "tls.crt": args.cert_pem,
                         "tls.key": pulumi.Output.secret(args.key_pem)},
            opts=child)
        if args.profile == "single-node":
            self._single_node(name, args, tls)
            return
        skip = None if args.await_ready else m.SKIP_AWAIT
        config = k8s.core.v1.ConfigMap(f"{name}-config", metadata=m.metadata(f"{name}-config", ns, app, name),
                                       data={"config.hcl": m.openbao_config()}, opts=child)
        k8s.apps.v1.StatefulSet(
            f"{name}-statefulset", metadata=m.metadata(name, ns, app, name, skip),
            spec=m.openbao_statefulset(name, ns, args.image, args.storage, f"{name}-config", f"{name}-tls"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[config, tls]))
        ports = {"api": m.VAULT_PORT, "cluster": m.VAULT_CLUSTER_PORT}
        for service_name, headless in ((name, False), (m.internal_service(name), True)):
            service = m.service(service_name, ns, app, name, ports, headless, skip)
            k8s.core.v1.Service(f"{service_name}-service", metadata=service["metadata"], spec=service["spec"],
                                opts=child)
        budget = m.disruption_budget(name, ns, app)
        k8s.policy.v1.PodDisruptionBudget(f"{name}-pdb", metadata=budget["metadata"], spec=budget["spec"],
                                          opts=child)
        pod = m.first_pod(name)
        register_outputs(self, {
            "address": pulumi.Output.from_input(f"https://{m.service_host(name, ns)}:{m.VAULT_PORT}"),
            "ca_pem": pulumi.Output.from_input(args.ca_pem),
            "database_ca_file": pulumi.Output.from_input("/openbao/tls/ca.crt"),
            "audit_log": pulumi.Output.from_input("/openbao/audit/audit.log"),
            "pod": pulumi.Output.from_input(pod),
            # In the pod, the listener's certificate names it localhost (server_dns_names).
            "operator_steps": pulumi.Output.from_input(
                f"initialise and unseal OpenBao in pod {pod} of namespace {ns}: kubectl exec -n {ns} {pod} -- "
                f"bao operator init -address=https://localhost:{m.VAULT_PORT} -key-shares={args.key_shares} "
                f"-key-threshold={args.key_threshold}, then bao operator unseal (same address) with "
                f"{args.key_threshold} of the keys"),
        })

    def _single_node(self, name: str, args: VaultKubernetesArgs, tls: k8s.core.v1.Secret) -> None:
        child = pulumi.ResourceOptions(parent=self)
        ns, app = args.namespace, m.VAULT_APP
        config_path = f"{IN_CONTAINER.data_dir}/config/config.hcl"
        config = k8s.core.v1.ConfigMap(
            f"{name}-config", metadata=m.metadata(f"{name}-config", ns, app, name),
            data={"config.hcl": render_config(IN_CONTAINER.data_dir, args.port, args.cluster_port)}, opts=child)
        claims = ("raft", "audit")
        volumes = node_volumes(self, name, ns, app, claims, args.data_dir, args.storage)
        statefulset = k8s.apps.v1.StatefulSet(
            f"{name}-statefulset", metadata=m.metadata(name, ns, app, name, m.NODE_AWAIT),
            spec=m.openbao_node_statefulset(name, args.image, args.storage, f"{name}-config", f"{name}-tls",
                                            args.port, config_path, IN_CONTAINER),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[config, tls, *volumes.values()]))
        address = f"https://{m.LOOPBACK_HOST}:{args.port}"
        ca_file = f"{args.data_dir}/vault-ca.crt"
        # A new pod spec (image, config) rolls the pod: the new one is unsealed with the kept keys.
        rollout = statefulset.metadata.apply(lambda meta: f"{meta.uid}/{meta.generation}")
        init = OpenBaoInit(f"{name}-init", address=address, ca_pem=args.ca_pem, ca_file=ca_file,
                           raft_volume=volumes["raft"].metadata.apply(lambda meta: meta.name),
                           container_id=rollout, key_shares=args.key_shares, key_threshold=args.key_threshold,
                           opts=child)
        # Unsealed again whenever a new pod (deleted, evicted, restarted) came up sealed.
        VaultUnsealed(keeper_name(name), address=address, ca_pem=args.ca_pem, unseal_keys=init.unseal_keys,
                      opts=pulumi.ResourceOptions(parent=self, depends_on=[init]))
        self._register_vault(
            address=address, ca_pem=args.ca_pem, ca_file=ca_file,
            database_ca_file=str(IN_CONTAINER.database_ca_file), admin_token=init.root_token,
            audit_log=str(IN_CONTAINER.audit_log), pod=pulumi.Output.from_input(m.first_pod(name)),
        )
