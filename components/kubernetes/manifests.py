"""The Kubernetes objects of the `kubernetes` target, as pure functions returning manifests.

The components (`components.kubernetes.vault`, `components.kubernetes.postgres`)
hand these to pulumi-kubernetes; tests read them directly and in the rendered
YAML. Everything runs as non-root with a read-only root filesystem and no
capabilities; every container has requests and limits; TLS material and keys
come from Secrets, never from the image; the namespace denies ingress by default
and opens only Vault -> database, Vault's nodes to each other, and labelled
clients -> Vault/database.

OpenBao runs as a StatefulSet of `replicas` raft nodes: pods started in parallel,
on different nodes (required anti-affinity), joined over the headless Service
(`retry_join` to every pod's name), unsealed by the static seal (its key from a
Secret), one PodDisruptionBudget allowing one down. A pod is ready once it is
unsealed (the active node or a standby, which forwards): the Services route to
any of them. PostgreSQL runs from the image built here, as its postgres account.
"""

from typing import Any, Sequence

from components.servers import postgres_image
from components.servers.openbao import openbao_hcl

VAULT_APP = "openbao"
DB_APP = "postgres"
VAULT_PORT, VAULT_CLUSTER_PORT, DB_PORT = 8200, 8201, 5432
#: Pods with these labels may reach Vault's API, or the database.
VAULT_CLIENT_LABEL = {"dbcreds.io/vault-client": "true"}
DB_CLIENT_LABEL = {"dbcreds.io/database-client": "true"}
#: The images' users: OpenBao's (the upstream image's uid), PostgreSQL's (postgres in the image built here).
VAULT_UID, DB_UID = 100, postgres_image.POSTGRES_UID
#: Where OpenBao's files are in its pods.
OPENBAO_DIR = "/openbao"
#: The cluster's DNS domain: a pod's full name ends with it.
CLUSTER_DOMAIN = "cluster.local"


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


def network_policies(namespace: str, client_namespaces: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """Name -> spec: deny all ingress, then Vault and labelled clients to the database, clients to Vault,
    Vault's nodes to each other. Labelled pods of client_namespaces (the Kubernetes clients' own) are
    clients too."""
    def from_pods(*selectors: dict[str, str]) -> list[dict[str, Any]]:
        return [{"podSelector": {"matchLabels": s}} for s in selectors]

    def from_client_namespaces(label: dict[str, str]) -> list[dict[str, Any]]:
        return [{"podSelector": {"matchLabels": label},
                 "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": other}}}
                for other in client_namespaces if other != namespace]

    return {
        "default-deny-ingress": {"podSelector": {}, "policyTypes": ["Ingress"]},
        "database-from-vault-and-clients": {
            "podSelector": {"matchLabels": labels(DB_APP)}, "policyTypes": ["Ingress"],
            "ingress": [{"from": [*from_pods(labels(VAULT_APP), DB_CLIENT_LABEL),
                                  *from_client_namespaces(DB_CLIENT_LABEL)],
                         "ports": [{"protocol": "TCP", "port": DB_PORT}]}],
        },
        "vault-from-clients": {
            "podSelector": {"matchLabels": labels(VAULT_APP)}, "policyTypes": ["Ingress"],
            "ingress": [
                {"from": from_pods(VAULT_CLIENT_LABEL) + from_client_namespaces(VAULT_CLIENT_LABEL),
                 "ports": [{"protocol": "TCP", "port": VAULT_PORT}]},
                {"from": from_pods(labels(VAULT_APP)),
                 "ports": [{"protocol": "TCP", "port": p} for p in (VAULT_PORT, VAULT_CLUSTER_PORT)]},
            ],
        },
    }


def service_host(service_name: str, namespace: str) -> str:
    return f"{service_name}.{namespace}.svc"


def internal_service(instance: str) -> str:
    """The headless Service that names each pod of a StatefulSet."""
    return f"{instance}-internal"


def pod_names(instance: str, replicas: int) -> list[str]:
    """A StatefulSet's pods' names, in order."""
    return [f"{instance}-{i}" for i in range(replicas)]


def pod_host(instance: str, index: int, namespace: str) -> str:
    """Pod `index` of a StatefulSet, through its headless Service."""
    return f"{instance}-{index}.{internal_service(instance)}.{namespace}.svc"


def server_dns_names(namespace: str, instance: str, replicas: int = 1) -> tuple[str, ...]:
    """The names a server's certificate must carry: its Service, each pod of its StatefulSet, and
    localhost (in the pod)."""
    pods = [pod_host(instance, i, namespace) for i in range(replicas)]
    service_name = service_host(instance, namespace)
    return (service_name, f"{service_name}.{CLUSTER_DOMAIN}", instance, f"{instance}.{namespace}", *pods,
            *(f"{pod}.{CLUSTER_DOMAIN}" for pod in pods), "localhost")


# OpenBao


def openbao_config(instance: str, namespace: str, replicas: int, seal_key_ids: Sequence[str]) -> str:
    """OpenBao's HCL in every pod (`components.servers.openbao.openbao_hcl`): raft on the data volume,
    joined to every pod of the StatefulSet, TLS from the mounted Secret, the static seal from its
    Secret, the audit device on its volume. Each pod's own addresses come from its environment
    (BAO_API_ADDR, BAO_CLUSTER_ADDR)."""
    peers = [f"https://{pod_host(instance, i, namespace)}:{VAULT_PORT}" for i in range(replicas)] if replicas > 1 else []
    return openbao_hcl(
        raft_path=f"{OPENBAO_DIR}/data", listen=f"0.0.0.0:{VAULT_PORT}", cluster_listen=f"0.0.0.0:{VAULT_CLUSTER_PORT}",
        tls_dir=f"{OPENBAO_DIR}/tls", audit_file=f"{OPENBAO_DIR}/audit/audit.log", peers=peers,
        seal_dir=f"{OPENBAO_DIR}/seal", seal_key_ids=seal_key_ids)


#: OpenBao's health: 200 when active, and (standbyok) when a standby; sealed or uninitialised: not ready.
READY_PATH = "/v1/sys/health?standbyok=true"
#: Alive whenever it answers: a sealed or uninitialised server is not restarted for it.
ALIVE_PATH = "/v1/sys/health?standbyok=true&sealedcode=200&uninitcode=200"


def anti_affinity(app: str, instance: str) -> dict[str, Any]:
    """Never two of the instance's pods on one node."""
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": labels(app, instance)}, "topologyKey": "kubernetes.io/hostname"}]}}


#: How long an OpenBao pod stays bound to a node that is unreachable or not ready before it is evicted:
#: Kubernetes' own default, stated because clusters set shorter ones. Its raft volume is the node's, so
#: an evicted pod could only wait for that node anyway; recreated there, it came back under a new IP
#: while the others still resolved the old one, and raft went minutes without a leader.
NODE_LOSS_TOLERATION_SECONDS = 300


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


def openbao_statefulset(instance: str, namespace: str, image: str, pull: str, replicas: int, storage: str,
                        storage_class: str | None, config_map: str, tls_secret: str, seal_secret: str,
                        service_account: str | None = None) -> dict[str, Any]:
    """service_account: OpenBao's own, whose token (projected at API_TOKEN_DIR) reviews the tokens
    pods log in with (Kubernetes auth); None: no service account token at all."""
    pod = f"https://$(POD_NAME).{internal_service(instance)}.{namespace}.svc"
    probe = {"port": VAULT_PORT, "scheme": "HTTPS"}
    container = {
        "name": "openbao", "image": image, "imagePullPolicy": pull,
        "args": ["server", f"-config={OPENBAO_DIR}/config/config.hcl"],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "BAO_API_ADDR", "value": f"{pod}:{VAULT_PORT}"},
                {"name": "BAO_CLUSTER_ADDR", "value": f"{pod}:{VAULT_CLUSTER_PORT}"},
                {"name": "BAO_CACERT", "value": f"{OPENBAO_DIR}/tls/ca.crt"}],
        "ports": [{"name": "api", "containerPort": VAULT_PORT},
                  {"name": "cluster", "containerPort": VAULT_CLUSTER_PORT}],
        "securityContext": container_security(),
        "resources": resources("250m", "256Mi"),
        "readinessProbe": {"httpGet": {"path": READY_PATH, **probe}, "periodSeconds": 2, "timeoutSeconds": 2},
        "livenessProbe": {"httpGet": {"path": ALIVE_PATH, **probe}, "periodSeconds": 10, "timeoutSeconds": 5},
        "volumeMounts": [{"name": "data", "mountPath": f"{OPENBAO_DIR}/data"},
                         {"name": "audit", "mountPath": f"{OPENBAO_DIR}/audit"},
                         {"name": "config", "mountPath": f"{OPENBAO_DIR}/config", "readOnly": True},
                         {"name": "tls", "mountPath": f"{OPENBAO_DIR}/tls", "readOnly": True},
                         {"name": "seal", "mountPath": f"{OPENBAO_DIR}/seal", "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }
    # The Secret's keys as the config names them; the database's CA is the bootstrap CA.
    tls_items = [{"key": "ca.crt", "path": "ca.crt"}, {"key": "ca.crt", "path": "database-ca.crt"},
                 {"key": "tls.crt", "path": "server.crt"}, {"key": "tls.key", "path": "server.key"}]
    volumes = [{"name": "config", "configMap": {"name": config_map}},
               {"name": "tls", "secret": {"secretName": tls_secret, "defaultMode": 0o440, "items": tls_items}},
               # Readable by OpenBao's group only (fsGroup).
               {"name": "seal", "secret": {"secretName": seal_secret, "defaultMode": 0o440}},
               {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}]
    identity: dict[str, Any] = {}
    if service_account:
        # Never automounted (the pod spec says false): projected by hand, into OpenBao's container only.
        identity = {"serviceAccountName": service_account}
        volumes.append(api_token_volume("api-token"))
        container["volumeMounts"].append({"name": "api-token", "mountPath": API_TOKEN_DIR, "readOnly": True})
    return {
        "serviceName": internal_service(instance), "replicas": replicas, "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": labels(VAULT_APP, instance)},
        "template": {
            "metadata": {"labels": labels(VAULT_APP, instance)},
            "spec": {"securityContext": pod_security(VAULT_UID), "automountServiceAccountToken": False, **identity,
                     "affinity": anti_affinity(VAULT_APP, instance), "terminationGracePeriodSeconds": 30,
                     "tolerations": node_loss_tolerations(NODE_LOSS_TOLERATION_SECONDS),
                     "containers": [container], "volumes": volumes},
        },
        "volumeClaimTemplates": [volume_claim("data", storage, storage_class),
                                 volume_claim("audit", storage, storage_class)],
    }


# PostgreSQL


def postgres_statefulset(instance: str, image: str, pull: str, storage: str, storage_class: str | None,
                         config_map: str, tls_secret: str, password_secret: str) -> dict[str, Any]:
    """PostgreSQL from the image built here (`components.servers.postgres_image`), as its postgres
    account, on DB_PORT of the pod's address."""
    paths = postgres_image
    container = {
        "name": "postgres", "image": image, "imagePullPolicy": pull,
        "command": ["/bin/sh", f"{paths.BOOTSTRAP}/start.sh"],
        "ports": [{"name": "postgres", "containerPort": DB_PORT}],
        "securityContext": container_security(), "resources": resources("500m", "512Mi"),
        # Ready once the server itself (not the one the bootstrap runs on the socket) answers on TCP.
        "readinessProbe": {"tcpSocket": {"port": DB_PORT}, "periodSeconds": 2},
        "livenessProbe": {"tcpSocket": {"port": DB_PORT}, "periodSeconds": 10, "initialDelaySeconds": 30},
        # A fast shutdown: the default (smart) one waits for Vault's pooled connections to close.
        "lifecycle": {"preStop": {"exec": {"command": ["pg_ctl", "--pgdata", paths.PGDATA, "--mode", "fast",
                                                       "--wait", "stop"]}}},
        "volumeMounts": [{"name": "data", "mountPath": paths.DATA},
                         {"name": "run", "mountPath": paths.RUN},
                         {"name": "tmp", "mountPath": "/tmp"},
                         {"name": "bootstrap", "mountPath": paths.BOOTSTRAP, "readOnly": True},
                         {"name": "tls", "mountPath": "/bootstrap-tls", "readOnly": True},
                         {"name": "passwords", "mountPath": "/bootstrap-secrets", "readOnly": True}],
    }
    volumes = [
        {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
        {"name": "bootstrap", "configMap": {"name": config_map, "defaultMode": 0o444}},
        # Root's files, readable by the pod's group: PostgreSQL takes a key of mode 0640 owned by root.
        {"name": "tls", "secret": {"secretName": tls_secret, "defaultMode": 0o440}},
        {"name": "passwords", "secret": {"secretName": password_secret, "defaultMode": 0o440,
                                         "items": [{"key": "admin-password", "path": "admin-password"}]}},
    ]
    return {
        "serviceName": internal_service(instance), "replicas": 1,
        "selector": {"matchLabels": labels(DB_APP, instance)},
        "template": {
            "metadata": {"labels": labels(DB_APP, instance)},
            "spec": {"securityContext": pod_security(DB_UID), "automountServiceAccountToken": False,
                     "terminationGracePeriodSeconds": 30, "containers": [container], "volumes": volumes},
        },
        "volumeClaimTemplates": [volume_claim("data", storage, storage_class)],
    }
