"""Vault (OpenBao) on Kubernetes: the `kubernetes` target of the Vault server.

    vault = VaultKubernetes("vault", VaultKubernetesArgs(namespace="dbcreds", ca_pem=..., cert_pem=...,
                            key_pem=..., image=..., replicas=3, address="https://127.0.0.1:18200",
                            ca_file="/srv/stack/vault-ca.crt"),
                            opts=pulumi.ResourceOptions(provider=k8s_provider))

A StatefulSet of `replicas` raft nodes (`components.kubernetes.manifests.openbao`), its
config in a ConfigMap, TLS and the static seal's key in Secrets, a Service for
clients and a headless one that names each pod, a PodDisruptionBudget, each
named after the component (`vault`, `vault-config`, `vault-tls`, `vault-seal`:
two components share a namespace). The stack reaches it at `address` (a
`components.kubernetes.port_forward.PortForward` the program holds open): it
initialises it there, keeps no root token (its own admin policy and a periodic
token of it instead: `components.servers.openbao_api.OpenBaoInit`), and every
pod unseals itself. The StatefulSet is OnDelete: a new image (a new release)
is moved onto the pods by `components.kubernetes.rollout.OpenBaoPodRollout`,
standbys first, the active pod last. Without `address` (manifests rendered to a
folder for kubectl) nothing is initialised: `operator_steps` says what its
operator does.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes import audit_rotator, manifests as m
from components.kubernetes.rollout import OpenBaoPodRollout, template_digest
from components.options import register_outputs
from components.servers.seal_key import static_seal_key
from components.servers.openbao_api import OpenBaoInit
from components.vault_policies import stack_admin_policy
from components.vault_component import VaultComponent


@dataclass(frozen=True)
class VaultKubernetesArgs:
    namespace: str
    ca_pem: pulumi.Input[str]
    cert_pem: pulumi.Input[str]
    key_pem: pulumi.Input[str]
    image: str
    #: The image was built here and imported into the nodes (never pulled).
    image_built_here: bool = True
    #: Raft nodes: 1, or an odd number from 3.
    replicas: int = 1
    storage: str = "1Gi"
    #: None: the cluster's default StorageClass.
    storage_class: Optional[str] = None
    #: Where the stack reaches Vault's Service from this machine (a port-forward); None: not reached
    #: (rendered manifests): not initialised by the stack.
    address: Optional[str] = None
    #: Where the listener's CA is written on this machine (the Vault provider takes a file).
    ca_file: str = ""
    #: The key split made at initialisation: recovery keys (the static seal).
    key_shares: int = 1
    key_threshold: int = 1
    #: The static seal's key (base64 of 32 bytes, secret); None: made by pulumi-random.
    seal_key: Optional[pulumi.Input[str]] = None
    #: The mounts and auth methods the stack configures, which its admin policy covers.
    mounts: tuple[str, ...] = ("database",)
    auth_mounts: tuple[str, ...] = ("approle",)
    #: OpenBao's pods get a service account of their own, bound to system:auth-delegator, and its token
    #: (projected, never automounted): Kubernetes auth reviews the tokens pods log in with through it.
    token_reviewer: bool = False
    #: The OpenBao release the image holds, when known (built here from a binary); empty: a registry's
    #: image, whose release the pods say.
    release: str = ""
    #: The cluster's kubeconfig (None: the ambient one), for the rollout's kubectl.
    kubeconfig: Optional[str] = None
    #: The Python image (and whether built here) of the sidecar that rotates the audit log
    #: (components/kubernetes/audit_rotator.py); empty: no sidecar, the log is not rotated.
    python_image: str = ""
    python_built_here: bool = True


#: The static seal key's id in the pods: one key for the StatefulSet's life (a new key is a new
#: StatefulSet: OpenBao would not read the old one's data).
SEAL_KEY_ID = "dbcreds-seal"


class VaultKubernetes(VaultComponent):
    """OpenBao as a StatefulSet of raft nodes, TLS only, with its audit device; outputs as every
    `VaultComponent`'s (`address`: where the stack reaches it; `addresses`: each pod's name in the
    cluster), and `service_address` (its Service's in-cluster address), `pods`, `recovery_keys`
    (secret), `version` (the OpenBao release the pods run), and `operator_steps` where the stack does
    not initialise it."""

    service_address: pulumi.Output[str]
    pods: pulumi.Output[list]
    recovery_keys: pulumi.Output[list]
    operator_steps: pulumi.Output[str]
    version: pulumi.Output[str]

    def __init__(self, name: str, args: VaultKubernetesArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:vault:VaultKubernetes", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns, app = args.namespace, m.VAULT_APP
        seal_key = (pulumi.Output.secret(args.seal_key) if args.seal_key is not None
                    else static_seal_key(f"{name}-seal-key", self))
        # One key id for the StatefulSet's life (the config, known at a first preview, names it; the
        # policy gate reads the seal from it there).
        key_id = SEAL_KEY_ID
        tls = k8s.core.v1.Secret(
            f"{name}-tls", metadata=m.metadata(f"{name}-tls", ns, app, name), type="kubernetes.io/tls",
            string_data={"ca.crt": args.ca_pem, "tls.crt": args.cert_pem,
                         "tls.key": pulumi.Output.secret(args.key_pem)},
            opts=child)
        seal = k8s.core.v1.Secret(
            f"{name}-seal", metadata=m.metadata(f"{name}-seal", ns, app, name),
            string_data=pulumi.Output.secret(seal_key.apply(lambda key: {key_id: key})),
            opts=child)
        rotator_script = Path(audit_rotator.__file__).read_text()
        config = k8s.core.v1.ConfigMap(
            f"{name}-config", metadata=m.metadata(f"{name}-config", ns, app, name),
            data={"config.hcl": m.openbao_config(name, ns, args.replicas, [key_id]),
                  m.ROTATOR_SCRIPT: rotator_script}, opts=child)
        identity = self._token_reviewer(name, ns) if args.token_reviewer else []
        spec = m.openbao_statefulset(name, ns, args.image, m.pull_policy(args.image_built_here), args.replicas,
                                     args.storage, args.storage_class, f"{name}-config", f"{name}-tls",
                                     f"{name}-seal", service_account=name if args.token_reviewer else None,
                                     rotator={"image": args.python_image, "pull": m.pull_policy(args.python_built_here),
                                              "digest": hashlib.sha256(rotator_script.encode()).hexdigest()[:16]}
                                     if args.python_image else None)
        statefulset = k8s.apps.v1.StatefulSet(
            f"{name}-statefulset", metadata=m.metadata(name, ns, app, name, m.SKIP_AWAIT), spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[config, tls, seal, *identity]))
        ports = {"api": m.VAULT_PORT, "cluster": m.VAULT_CLUSTER_PORT}
        for service_name, headless in ((name, False), (m.internal_service(name), True)):
            service = m.service(service_name, ns, app, name, ports, headless, m.SKIP_AWAIT)
            k8s.core.v1.Service(f"{service_name}-service", metadata=service["metadata"], spec=service["spec"],
                                opts=child)
        budget = m.disruption_budget(name, ns, app)
        k8s.policy.v1.PodDisruptionBudget(f"{name}-pdb", metadata=budget["metadata"], spec=budget["spec"],
                                          opts=child)
        service_address = f"https://{m.service_host(name, ns)}:{m.VAULT_PORT}"
        pods = m.pod_names(name, args.replicas)
        outputs = {
            "service_address": pulumi.Output.from_input(service_address), "pods": pulumi.Output.from_input(pods),
            "addresses": [f"https://{m.pod_host(name, i, ns)}:{m.VAULT_PORT}" for i in range(args.replicas)],
            "database_ca_file": f"{m.OPENBAO_DIR}/tls/database-ca.crt", "audit_log": f"{m.OPENBAO_DIR}/audit/audit.log",
            "ca_pem": args.ca_pem,
        }
        if args.address is None:
            register_outputs(self, {
                **{k: pulumi.Output.from_input(v) for k, v in outputs.items()},
                "address": pulumi.Output.from_input(service_address), "version": pulumi.Output.from_input(args.release),
                "operator_steps": pulumi.Output.from_input(
                    f"initialise OpenBao once in pod {pods[0]} of namespace {ns}: kubectl exec -n {ns} {pods[0]} -- "
                    f"bao operator init -address=https://localhost:{m.VAULT_PORT} -recovery-shares={args.key_shares} "
                    f"-recovery-threshold={args.key_threshold}; every pod unseals itself (the static seal)"),
            })
            return
        # New storage (a new StatefulSet, whose claims go with it): a new initialisation.
        init = OpenBaoInit(
            f"{name}-init", address=args.address, ca_pem=args.ca_pem, ca_file=args.ca_file,
            raft_volume=statefulset.metadata.apply(lambda meta: meta.uid), container_id="", seal="static",
            key_shares=args.key_shares, key_threshold=args.key_threshold, keep_root_token=False,
            admin_policy=stack_admin_policy(args.mounts, args.auth_mounts), opts=child)
        # Every pod of the template, moved standbys first when it changes (the StatefulSet is OnDelete).
        rollout = OpenBaoPodRollout(
            f"{name}-rollout", kubeconfig=args.kubeconfig, namespace=ns, statefulset=name, pods=pods,
            template=template_digest(spec["template"]), image=args.image,
            release=args.release, address=args.address, ca_pem=args.ca_pem, token=init.admin_token,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[statefulset, init]))
        self._register_vault(
            address=args.address, ca_pem=args.ca_pem, ca_file=args.ca_file, version=rollout.version,
            database_ca_file=outputs["database_ca_file"], admin_token=init.admin_token,
            audit_log=outputs["audit_log"], addresses=[args.address],
            service_address=outputs["service_address"], pods=outputs["pods"],
            node_addresses=pulumi.Output.from_input(outputs["addresses"]),
            recovery_keys=pulumi.Output.secret(init.recovery_keys),
        )

    def _token_reviewer(self, name: str, ns: str) -> list[pulumi.Resource]:
        """OpenBao's service account, allowed to review tokens (TokenReview) and nothing else of the API.
        Its token stays in OpenBao's pods, is replaced by kubelet every hour and reread by OpenBao: no
        reviewer token lives in Vault's config or the stack's state."""
        account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account", metadata=m.metadata(name, ns, m.VAULT_APP, name),
            automount_service_account_token=False, opts=pulumi.ResourceOptions(parent=self))
        binding = k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-token-reviewer",
            metadata={"name": f"dbcreds-{ns}-{name}-token-reviewer", "labels": m.labels(m.VAULT_APP, name)},
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"},
            subjects=[{"kind": "ServiceAccount", "name": name, "namespace": ns}],
            opts=pulumi.ResourceOptions(parent=self))
        return [account, binding]
