"""The stack's Kubernetes namespace and its network policies.

    namespace = KubernetesNamespace("k8s", KubernetesNamespaceArgs(name="dbcreds"), opts=...)

Ingress is denied by default; the database takes connections only from Vault
and from pods labelled `dbcreds.io/database-client=true`; Vault's API only from
pods labelled `dbcreds.io/vault-client=true` (and its own pods).

With `host_network` (the single-node profile) the pods use the host's network:
Pod Security's `restricted` level is then warned about and audited, not enforced
(it refuses host networking), and there are no network policies (they do not
apply to host-network pods; the servers listen on 127.0.0.1 only).
"""

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes import manifests as m


@dataclass(frozen=True)
class KubernetesNamespaceArgs:
    name: str
    #: Wait for the namespace to be gone on delete (off for an API server without controllers).
    await_ready: bool = True
    #: Its pods use the host's network (the single-node profile).
    host_network: bool = False


class KubernetesNamespace(pulumi.ComponentResource):
    """A namespace whose pods take only the connections the stack needs."""

    name: pulumi.Output[str]

    def __init__(self, name: str, args: KubernetesNamespaceArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:kubernetes:KubernetesNamespace", name, None, opts)
        security = ({"pod-security.kubernetes.io/enforce": "privileged", "pod-security.kubernetes.io/warn": "restricted",
                     "pod-security.kubernetes.io/audit": "restricted"} if args.host_network
                    else {"pod-security.kubernetes.io/enforce": "restricted"})
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": args.name, "labels": {"app.kubernetes.io/part-of": "dbcreds", **security},
                      "annotations": {} if args.await_ready else m.SKIP_AWAIT},
            opts=pulumi.ResourceOptions(parent=self))
        after_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        for policy, spec in ({} if args.host_network else m.network_policies(args.name)).items():
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{policy}", metadata={"name": policy, "namespace": args.name,
                                              "labels": {"app.kubernetes.io/part-of": "dbcreds"}},
                spec=spec, opts=after_namespace)
        self.name = namespace.metadata.apply(lambda meta: meta["name"] if isinstance(meta, dict) else meta.name)
        self.register_outputs({"name": self.name})
