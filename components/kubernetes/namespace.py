"""The stack's Kubernetes namespace and its network policies.

    namespace = KubernetesNamespace("k8s", KubernetesNamespaceArgs(name="dbcreds"), opts=...)

Ingress is denied by default; the database takes connections only from Vault
and from pods labelled `dbcreds.io/database-client=true`; Vault's API only from
pods labelled `dbcreds.io/vault-client=true` (and its own pods); such pods of the Kubernetes clients'
namespaces too.
Pod Security's `restricted` level is enforced on the namespace.
"""

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes import manifests as m


@dataclass(frozen=True)
class KubernetesNamespaceArgs:
    name: str
    #: The namespaces of the clients' own pods (Kubernetes auth): their labelled pods may reach Vault and
    #: the database too.
    client_namespaces: tuple[str, ...] = ()


class KubernetesNamespace(pulumi.ComponentResource):
    """A namespace whose pods take only the connections the stack needs."""

    name: pulumi.Output[str]

    def __init__(self, name: str, args: KubernetesNamespaceArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:kubernetes:KubernetesNamespace", name, None, opts)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": args.name, "labels": {"app.kubernetes.io/part-of": "dbcreds",
                                                    "pod-security.kubernetes.io/enforce": "restricted"}},
            opts=pulumi.ResourceOptions(parent=self))
        after_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        for policy, spec in m.network_policies(args.name, args.client_namespaces).items():
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{policy}", metadata={"name": policy, "namespace": args.name,
                                              "labels": {"app.kubernetes.io/part-of": "dbcreds"}},
                spec=spec, opts=after_namespace)
        self.name = namespace.metadata.apply(lambda meta: meta["name"] if isinstance(meta, dict) else meta.name)
        self.register_outputs({"name": self.name})
