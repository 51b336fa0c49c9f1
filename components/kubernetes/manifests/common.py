"""What every object of the `kubernetes` target shares: which server it belongs to (labels, metadata),
the pod and container security every workload runs with, requests and limits, pull policies, volume
claims, Services, disruption budgets, scheduling and a pod's own API token."""

from typing import Any

VAULT_APP = "openbao"
DB_APP = "postgres"
VAULT_PORT, VAULT_CLUSTER_PORT, DB_PORT = 8200, 8201, 5432


def labels(app: str, instance: str | None = None) -> dict[str, str]:
    """What a server is (`app`: every OpenBao, every PostgreSQL of the namespace, as network policies
    select them), and, given an instance, which one: the component whose objects carry its name."""
    kind = {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "dbcreds"}
    return {**kind, "app.kubernetes.io/instance": instance} if instance else kind


#: Tells pulumi-kubernetes not to wait for a workload's pods or a Service's endpoints (the stack waits
#: for what it needs itself: OpenBao's pods are not ready before the stack initialises them).
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}


def metadata(name: str, namespace: str, app: str, instance: str,
             annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """An object `name` of the server `instance` (the component's name, which its objects' names start with)."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels(app, instance)}
    if annotations:
        meta["annotations"] = annotations
    return meta


def pod_security(uid: int) -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]}}


def resources(cpu: str, memory: str) -> dict[str, Any]:
    """Requests and limits: memory limited at its request (no overcommit), CPU burstable to twice."""
    limit_cpu = f"{int(cpu.removesuffix('m')) * 2}m" if cpu.endswith("m") else str(float(cpu) * 2)
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": limit_cpu, "memory": memory}}


def pull_policy(built_here: bool) -> str:
    """Never for the images built here (imported into every node); IfNotPresent for a registry's."""
    return "Never" if built_here else "IfNotPresent"


def volume_claim(name: str, size: str, storage_class: str | None) -> dict[str, Any]:
    """A claim template; storage_class None: the cluster's default StorageClass. The claims stay when
    the StatefulSet goes and go with the namespace (no claim retention policy: its controller's updates
    of the claims race the scheduler's binding of a new pod's volumes, which can leave a pod Pending)."""
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"metadata": {"name": name}, "spec": spec}


def service(name: str, namespace: str, app: str, instance: str, ports: dict[str, int], headless: bool = False,
            annotations: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": labels(app, instance),
                            "ports": [{"name": n, "port": p, "targetPort": p} for n, p in ports.items()]}
    if headless:
        spec["clusterIP"] = "None"
        spec["publishNotReadyAddresses"] = True
    return {"metadata": metadata(name, namespace, app, instance, annotations), "spec": spec}


def disruption_budget(instance: str, namespace: str, app: str) -> dict[str, Any]:
    """At most one pod of the instance down at a time from voluntary disruptions (drains)."""
    return {"metadata": metadata(instance, namespace, app, instance),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels(app, instance)}}}


def anti_affinity(app: str, instance: str) -> dict[str, Any]:
    """Never two of the instance's pods on one node."""
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": labels(app, instance)}, "topologyKey": "kubernetes.io/hostname"}]}}


def node_loss_tolerations(seconds: int) -> list[dict[str, Any]]:
    """A pod's tolerations of its node's loss (the taints the node controller puts on it)."""
    return [{"key": f"node.kubernetes.io/{taint}", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": seconds} for taint in ("not-ready", "unreachable")]


#: Where Kubernetes mounts a pod's API token (and its CA, and namespace).
API_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
#: How long a projected API token lives before kubelet replaces it (OpenBao rereads the file).
API_TOKEN_SECONDS = 3600


def api_token_volume(name: str) -> dict[str, Any]:
    """The pod's own API token, its cluster's CA and its namespace, projected as automounting would (the
    standard path's layout) but declared: only the pods that need one carry it."""
    return {"name": name, "projected": {"defaultMode": 0o440, "sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": API_TOKEN_SECONDS}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
    ]}}
