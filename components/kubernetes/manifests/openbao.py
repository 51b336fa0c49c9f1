"""OpenBao's StatefulSet and its config.

`replicas` raft nodes: pods started in parallel, on different nodes (required anti-affinity), joined
over the headless Service (`retry_join` to every pod's name), unsealed by the static seal (its key
from a Secret). A pod is ready once it is unsealed (the active node or a standby, which forwards): the
Services route to any of them. A changed template (a new image: a new release) moves no pod by itself
(`updateStrategy: OnDelete`): the stack's rollout deletes the pods one by one, the active one last.
"""

from typing import Any, Sequence

from components.kubernetes.manifests.addresses import internal_service, pod_host
from components.kubernetes.manifests.common import (
    VAULT_APP, VAULT_CLUSTER_PORT, VAULT_PORT, anti_affinity, api_token_volume, API_TOKEN_DIR, container_security,
    labels, node_loss_tolerations, pod_security, resources, volume_claim)
from components.servers.openbao import openbao_hcl

#: OpenBao's user in its pods: the upstream image's uid.
VAULT_UID = 100
#: Where OpenBao's files are in its pods.
OPENBAO_DIR = "/openbao"


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

#: How long an OpenBao pod stays bound to a node that is unreachable or not ready before it is evicted:
#: Kubernetes' own default, stated because clusters set shorter ones. Its raft volume is the node's, so
#: an evicted pod could only wait for that node anyway; recreated there, it came back under a new IP
#: while the others still resolved the old one, and raft went minutes without a leader.
NODE_LOSS_TOLERATION_SECONDS = 300


#: The audit log's rotation in each pod (components/kubernetes/audit_rotator.py, the sidecar): past this
#: size the log is moved aside, and this many moved logs are kept (what fits the audit volume).
AUDIT_MAX_BYTES = 32 * 1024 * 1024
AUDIT_KEEP = 14
#: The sidecar's container, and where its script is mounted.
ROTATOR_CONTAINER = "audit-rotator"
ROTATOR_DIR = "/opt/rotator"
ROTATOR_SCRIPT = "audit_rotator.py"


def audit_rotator(image: str, pull: str) -> dict[str, Any]:
    """The sidecar that rotates OpenBao's audit log by size (and at once when `make rotate-audit` execs
    it): the Python image built here, the audit volume shared, OpenBao's process seen through the pod's
    shared process namespace and signalled as the same user (no capability)."""
    return {
        "name": ROTATOR_CONTAINER, "image": image, "imagePullPolicy": pull,
        "command": ["/usr/bin/python3", f"{ROTATOR_DIR}/{ROTATOR_SCRIPT}", "watch", str(AUDIT_MAX_BYTES),
                    str(AUDIT_KEEP)],
        "securityContext": container_security(), "resources": resources("10m", "32Mi"),
        "volumeMounts": [{"name": "audit", "mountPath": f"{OPENBAO_DIR}/audit"},
                         {"name": "rotator", "mountPath": ROTATOR_DIR, "readOnly": True}],
    }


def openbao_statefulset(instance: str, namespace: str, image: str, pull: str, replicas: int, storage: str,
                        storage_class: str | None, config_map: str, tls_secret: str, seal_secret: str,
                        service_account: str | None = None,
                        rotator: dict[str, str] | None = None) -> dict[str, Any]:
    """service_account: OpenBao's own, whose token (projected at API_TOKEN_DIR) reviews the tokens
    pods log in with (Kubernetes auth); None: no service account token at all. rotator: the audit
    log's sidecar (`audit_rotator`'s image and pull, and the script's digest, which the template
    carries so that a new script is rolled out; the script is config_map's key ROTATOR_SCRIPT); None:
    none."""
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
    containers = [container]
    template_meta: dict[str, Any] = {"labels": labels(VAULT_APP, instance)}
    if rotator:
        containers.append(audit_rotator(rotator["image"], rotator["pull"]))
        # The script is a key of OpenBao's ConfigMap (ROTATOR_SCRIPT), beside its config.
        volumes.append({"name": "rotator", "configMap": {"name": config_map,
                                                         "items": [{"key": ROTATOR_SCRIPT, "path": ROTATOR_SCRIPT}]}})
        identity["shareProcessNamespace"] = True
        template_meta["annotations"] = {"dbcreds/audit-rotator": rotator["digest"]}
    if service_account:
        # Never automounted (the pod spec says false): projected by hand, into OpenBao's container only.
        identity["serviceAccountName"] = service_account
        volumes.append(api_token_volume("api-token"))
        container["volumeMounts"].append({"name": "api-token", "mountPath": API_TOKEN_DIR, "readOnly": True})
    return {
        "serviceName": internal_service(instance), "replicas": replicas, "podManagementPolicy": "Parallel",
        # A new template moves no pod by itself: the rollout (components.kubernetes.rollout) deletes
        # them standbys first, each back a voter before the next, where a rolling update goes by
        # ordinal without waiting for raft.
        "updateStrategy": {"type": "OnDelete"},
        "selector": {"matchLabels": labels(VAULT_APP, instance)},
        "template": {
            "metadata": template_meta,
            "spec": {"securityContext": pod_security(VAULT_UID), "automountServiceAccountToken": False, **identity,
                     "affinity": anti_affinity(VAULT_APP, instance), "terminationGracePeriodSeconds": 30,
                     "tolerations": node_loss_tolerations(NODE_LOSS_TOLERATION_SECONDS),
                     "containers": containers, "volumes": volumes},
        },
        "volumeClaimTemplates": [volume_claim("data", storage, storage_class),
                                 volume_claim("audit", storage, storage_class)],
    }
