"""The Kubernetes objects of the `kubernetes` target, as pure functions returning manifests.

The components (`components.kubernetes.vault`, `components.kubernetes.postgres`)
hand these to pulumi-kubernetes; tests read them directly and in the rendered
YAML. Everything runs as non-root with a read-only root filesystem and no
capabilities; every container has requests and limits; TLS material comes
from Secrets, never from the image; the namespace denies ingress by default
and opens only Vault -> database and labelled clients -> Vault/database.
"""

from typing import Any

VAULT_APP = "openbao"
DB_APP = "postgres"
VAULT_PORT, VAULT_CLUSTER_PORT, DB_PORT = 8200, 8201, 5432
#: Pods with these labels may reach Vault's API, or the database.
VAULT_CLIENT_LABEL = {"dbcreds.io/vault-client": "true"}
DB_CLIENT_LABEL = {"dbcreds.io/database-client": "true"}
#: The official images' users (openbao: 100, postgres: 999).
VAULT_UID, DB_UID = 100, 999


def labels(app: str, instance: str | None = None) -> dict[str, str]:
    """What a server is (`app`: every OpenBao, every PostgreSQL of the namespace, as network policies
    select them), and, given an instance, which one: the component whose objects carry its name."""
    kind = {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "dbcreds"}
    return {**kind, "app.kubernetes.io/instance": instance} if instance else kind


#: Tells pulumi-kubernetes not to wait for a workload's pods or a Service's endpoints.
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


def volume_claim(name: str, size: str) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}}


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


def network_policies(namespace: str) -> dict[str, dict[str, Any]]:
    """Name -> spec: deny all ingress, then Vault and labelled clients to the database, clients to Vault."""
    def from_pods(*selectors: dict[str, str]) -> list[dict[str, Any]]:
        return [{"podSelector": {"matchLabels": s}} for s in selectors]

    return {
        "default-deny-ingress": {"podSelector": {}, "policyTypes": ["Ingress"]},
        "database-from-vault-and-clients": {
            "podSelector": {"matchLabels": labels(DB_APP)}, "policyTypes": ["Ingress"],
            "ingress": [{"from": from_pods(labels(VAULT_APP), DB_CLIENT_LABEL),
                         "ports": [{"protocol": "TCP", "port": DB_PORT}]}],
        },
        "vault-from-clients": {
            "podSelector": {"matchLabels": labels(VAULT_APP)}, "policyTypes": ["Ingress"],
            "ingress": [
                {"from": from_pods(VAULT_CLIENT_LABEL), "ports": [{"protocol": "TCP", "port": VAULT_PORT}]},
                {"from": from_pods(labels(VAULT_APP)),
                 "ports": [{"protocol": "TCP", "port": p} for p in (VAULT_PORT, VAULT_CLUSTER_PORT)]},
            ],
        },
    }


def service_host(service_name: str, namespace: str) -> str:
    return f"{service_name}.{namespace}.svc"


# OpenBao


def openbao_config() -> str:
    """OpenBao's HCL: raft on the data volume, TLS from the mounted Secret, a file audit device.

    The pod's own addresses come from the environment (BAO_API_ADDR, BAO_CLUSTER_ADDR).
    """
    return f"""storage "raft" {{
  path = "/openbao/data"
}}

listener "tcp" {{
  address         = "0.0.0.0:{VAULT_PORT}"
  cluster_address = "0.0.0.0:{VAULT_CLUSTER_PORT}"
  tls_cert_file   = "/openbao/tls/tls.crt"
  tls_key_file    = "/openbao/tls/tls.key"
  tls_min_version = "tls12"
}}

audit "file" "file" {{
  options {{
    file_path = "/openbao/audit/audit.log"
    mode      = "0600"
  }}
}}

ui = false
"""


def internal_service(instance: str) -> str:
    """The headless Service that names each pod of a StatefulSet."""
    return f"{instance}-internal"


def openbao_statefulset(instance: str, namespace: str, image: str, storage: str, config_map: str, tls_secret: str
                        ) -> dict[str, Any]:
    pod = f"https://$(POD_NAME).{internal_service(instance)}.{namespace}.svc"
    container = {
        "name": "openbao", "image": image,
        "args": ["server", "-config=/openbao/config/config.hcl"],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "BAO_API_ADDR", "value": f"{pod}:{VAULT_PORT}"},
                {"name": "BAO_CLUSTER_ADDR", "value": f"{pod}:{VAULT_CLUSTER_PORT}"},
                {"name": "BAO_CACERT", "value": "/openbao/tls/ca.crt"}],
        "ports": [{"name": "api", "containerPort": VAULT_PORT}, {"name": "cluster", "containerPort": VAULT_CLUSTER_PORT}],
        "securityContext": container_security(),
        "resources": resources("250m", "256Mi"),
        # Sealed or standby still answers: the pod is alive. Ready only when unsealed and active.
        "livenessProbe": {"httpGet": {"path": "/v1/sys/health?sealedcode=200&uninitcode=200&standbyok=true",
                                      "port": VAULT_PORT, "scheme": "HTTPS"}, "periodSeconds": 10},
        "readinessProbe": {"httpGet": {"path": "/v1/sys/health", "port": VAULT_PORT, "scheme": "HTTPS"},
                           "periodSeconds": 5},
        "volumeMounts": [{"name": "data", "mountPath": "/openbao/data"},
                         {"name": "audit", "mountPath": "/openbao/audit"},
                         {"name": "config", "mountPath": "/openbao/config", "readOnly": True},
                         {"name": "tls", "mountPath": "/openbao/tls", "readOnly": True}],
    }
    return {
        "serviceName": internal_service(instance), "replicas": 1,
        "selector": {"matchLabels": labels(VAULT_APP, instance)},
        "template": {
            "metadata": {"labels": labels(VAULT_APP, instance)},
            "spec": {"securityContext": pod_security(VAULT_UID), "automountServiceAccountToken": False,
                     "containers": [container],
                     "volumes": [{"name": "config", "configMap": {"name": config_map}},
                                 {"name": "tls", "secret": {"secretName": tls_secret, "defaultMode": 0o440}}]},
        },
        "volumeClaimTemplates": [volume_claim("data", storage), volume_claim("audit", storage)],
    }


# PostgreSQL


def postgres_conf() -> str:
    return """listen_addresses = '*'
ssl = on
ssl_cert_file = '/bootstrap-tls/tls.crt'
ssl_key_file = '/bootstrap-tls/tls.key'
ssl_min_protocol_version = 'TLSv1.2'
password_encryption = 'scram-sha-256'
"""


def pg_hba() -> str:
    """TLS and SCRAM only over the network; the in-pod socket for the image's own init."""
    return """local all all peer
hostssl all all 0.0.0.0/0 scram-sha-256
hostssl all all ::/0 scram-sha-256
"""


INIT_SCRIPT = """#!/bin/sh
# Runs once, from /docker-entrypoint-initdb.d, when the data volume is new.
set -eu
psql -v ON_ERROR_STOP=1 -v admin_password="$DBCREDS_ADMIN_PASSWORD" --username postgres --dbname postgres \\
  -f /bootstrap/bootstrap.sql
"""


def postgres_statefulset(instance: str, namespace: str, image: str, storage: str, config_map: str, tls_secret: str,
                         password_secret: str) -> dict[str, Any]:
    secret_env = [{"name": name, "valueFrom": {"secretKeyRef": {"name": password_secret, "key": key}}}
                  for name, key in (("POSTGRES_PASSWORD", "superuser-password"),
                                    ("DBCREDS_ADMIN_PASSWORD", "admin-password"))]
    container = {
        "name": "postgres", "image": image,
        "args": ["-c", "config_file=/bootstrap/postgresql.conf", "-c", "hba_file=/bootstrap/pg_hba.conf"],
        "env": [*secret_env, {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"}],
        "ports": [{"name": "postgres", "containerPort": DB_PORT}],
        "securityContext": container_security(),
        "resources": resources("500m", "512Mi"),
        "readinessProbe": {"exec": {"command": ["pg_isready", "--host", "/var/run/postgresql"]}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": DB_PORT}, "periodSeconds": 10},
        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"},
                         {"name": "run", "mountPath": "/var/run/postgresql"},
                         {"name": "tmp", "mountPath": "/tmp"},
                         {"name": "bootstrap", "mountPath": "/bootstrap", "readOnly": True},
                         {"name": "init", "mountPath": "/docker-entrypoint-initdb.d", "readOnly": True},
                         {"name": "tls", "mountPath": "/bootstrap-tls", "readOnly": True}],
    }
    return {
        "serviceName": internal_service(instance), "replicas": 1,
        "selector": {"matchLabels": labels(DB_APP, instance)},
        "template": {
            "metadata": {"labels": labels(DB_APP, instance)},
            "spec": {"securityContext": pod_security(DB_UID), "automountServiceAccountToken": False,
                     "containers": [container],
                     "volumes": [
                         {"name": "run", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}},
                         {"name": "bootstrap", "configMap": {"name": config_map, "items": [
                             {"key": k, "path": k} for k in ("postgresql.conf", "pg_hba.conf", "bootstrap.sql")]}},
                         {"name": "init", "configMap": {"name": config_map, "defaultMode": 0o555,
                                                        "items": [{"key": "init.sh", "path": "init.sh"}]}},
                         # The key must be 0600 or 0640 for PostgreSQL, readable by the pod's group.
                         {"name": "tls", "secret": {"secretName": tls_secret, "defaultMode": 0o440}},
                     ]},
        },
        "volumeClaimTemplates": [volume_claim("data", storage)],
    }


def server_dns_names(namespace: str, instance: str) -> tuple[str, ...]:
    """The names a server's certificate must carry: its Service and each pod of its StatefulSet."""
    return (service_host(instance, namespace), instance, f"{instance}.{namespace}",
            f"*.{internal_service(instance)}.{namespace}.svc", "localhost")


# The single-node profile: one node that is the machine running the stack (a test cluster, a
# developer's machine). Pods use the host's network and listen on 127.0.0.1 only: no Services, no
# NetworkPolicies (they do not apply to host-network pods), no PodDisruptionBudgets; storage is
# local PersistentVolumes under the stack's data folder, bound to the StatefulSets' claims.

#: The node's name (kubelet names it after --hostname-override; a loopback node IP is refused).
NODE = "127.0.0.1"
#: Where the single-node profile's servers listen, and where kubelet probes them.
LOOPBACK_HOST = "127.0.0.1"
PROFILES = ("cluster", "single-node")
#: How long `up` waits for a single-node StatefulSet's pod (pulumi-kubernetes' default: 10 minutes).
NODE_AWAIT = {"pulumi.com/timeoutSeconds": "300"}
#: Claims of the single-node profile bind only the PersistentVolumes the stack declares.
NO_STORAGE_CLASS = ""


def first_pod(statefulset: str) -> str:
    """The name of a StatefulSet's first (here: only) pod."""
    return f"{statefulset}-0"


def claim_name(template: str, statefulset: str) -> str:
    """The claim a StatefulSet's first pod gets from its volumeClaimTemplate."""
    return f"{template}-{first_pod(statefulset)}"


def node_volume(name: str, namespace: str, claim: str, path: str, size: str, app: str, instance: str
                ) -> dict[str, Any]:
    """A local PersistentVolume on the node at path, kept on release (the stack removes it), pre-bound
    to one claim."""
    return {"metadata": {"name": name, "labels": labels(app, instance)},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain", "storageClassName": NO_STORAGE_CLASS,
                     "local": {"path": path},
                     "claimRef": {"namespace": namespace, "name": claim},
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": "kubernetes.io/hostname", "operator": "In", "values": [NODE]}]}]}}}}


def _node_statefulset(app: str, instance: str, uid: int, container: dict[str, Any], volumes: list[dict[str, Any]],
                      claims: tuple[str, ...], storage: str) -> dict[str, Any]:
    claim_templates = [volume_claim(c, storage) for c in claims]
    for template in claim_templates:
        template["spec"]["storageClassName"] = NO_STORAGE_CLASS
    return {
        "replicas": 1, "selector": {"matchLabels": labels(app, instance)},
        # Its claims go with the StatefulSet (the stack removes the volumes behind them).
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
        "template": {
            "metadata": {"labels": labels(app, instance)},
            "spec": {"hostNetwork": True, "securityContext": pod_security(uid), "automountServiceAccountToken": False,
                     "terminationGracePeriodSeconds": 30, "containers": [container], "volumes": volumes},
        },
        "volumeClaimTemplates": claim_templates,
    }


def openbao_node_statefulset(instance: str, image: str, storage: str, config_map: str, tls_secret: str, port: int,
                             config_path: str, paths: Any) -> dict[str, Any]:
    """OpenBao on the host's network: `paths` is its layout in the pod (a
    `components.servers.openbao.LocalOpenBao`), the config at config_path. Ready once it answers, sealed
    or not: the stack initialises and unseals it through 127.0.0.1."""
    tls = str(paths.ca_file.parent)
    answers = {"httpGet": {"host": LOOPBACK_HOST, "path": "/v1/sys/health?sealedcode=200&uninitcode=200&standbyok=true",
                           "port": port, "scheme": "HTTPS"}, "periodSeconds": 5, "timeoutSeconds": 5}
    container = {
        "name": "openbao", "image": image, "imagePullPolicy": "Never",
        "args": ["server", f"-config={config_path}"],
        "ports": [{"name": "api", "containerPort": port}],
        "securityContext": container_security(), "resources": resources("250m", "256Mi"),
        "readinessProbe": answers, "livenessProbe": {**answers, "periodSeconds": 10},
        "volumeMounts": [{"name": "raft", "mountPath": str(paths.data_dir / "raft")},
                         {"name": "audit", "mountPath": str(paths.audit_log.parent)},
                         {"name": "config", "mountPath": config_path.rsplit("/", 1)[0], "readOnly": True},
                         {"name": "tls", "mountPath": tls, "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }
    # The database's CA is the bootstrap CA here: the Secret's ca.crt serves as both.
    items = [{"key": "ca.crt", "path": paths.ca_file.name}, {"key": "ca.crt", "path": paths.database_ca_file.name},
             {"key": "tls.crt", "path": "server.crt"}, {"key": "tls.key", "path": "server.key"}]
    volumes = [{"name": "config", "configMap": {"name": config_map}},
               {"name": "tls", "secret": {"secretName": tls_secret, "defaultMode": 0o440, "items": items}},
               {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}]
    return _node_statefulset(VAULT_APP, instance, VAULT_UID, container, volumes, ("raft", "audit"), storage)


def postgres_node_statefulset(instance: str, image: str, storage: str, config_map: str, tls_secret: str, password_secret: str,
                              port: int, uid: int, image_paths: Any) -> dict[str, Any]:
    """PostgreSQL from the image built here (`image_paths`: `components.servers.postgres_image`), as its
    postgres account, on the host's network at 127.0.0.1:port."""
    run, bootstrap = image_paths.RUN, image_paths.BOOTSTRAP
    container = {
        "name": "postgres", "image": image, "imagePullPolicy": "Never",
        "command": ["/bin/sh", f"{bootstrap}/start.sh"],
        "ports": [{"name": "postgres", "containerPort": port}],
        "securityContext": container_security(), "resources": resources("500m", "512Mi"),
        # Ready once the server itself (not the one the bootstrap runs on the socket) answers on TCP.
        "readinessProbe": {"tcpSocket": {"host": LOOPBACK_HOST, "port": port}, "periodSeconds": 2},
        "livenessProbe": {"tcpSocket": {"host": LOOPBACK_HOST, "port": port}, "periodSeconds": 10,
                          "initialDelaySeconds": 30},
        # A fast shutdown: the default (smart) one waits for Vault's pooled connections to close.
        "lifecycle": {"preStop": {"exec": {"command": ["pg_ctl", "--pgdata", image_paths.PGDATA, "--mode", "fast",
                                                       "--wait", "stop"]}}},
        "volumeMounts": [{"name": "data", "mountPath": image_paths.DATA},
                         {"name": "run", "mountPath": run},
                         {"name": "tmp", "mountPath": "/tmp"},
                         {"name": "bootstrap", "mountPath": bootstrap, "readOnly": True},
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
    return _node_statefulset(DB_APP, instance, uid, container, volumes, ("data",), storage)
