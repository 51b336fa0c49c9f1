"""What the test cluster runs as pods once its nodes are up: cluster DNS and the default StorageClass.

- CoreDNS as a Deployment (two replicas on two nodes, one on a single node) behind the Service
  `kube-dns` in kube-system at the Service range's .10, the address every kubelet writes into its pods'
  resolv.conf: `<service>.<namespace>.svc.cluster.local`, a headless Service's pods
  (`<pod>.<service>.<namespace>.svc.cluster.local`), pod and reverse records. It forwards nothing:
  a name outside the cluster gets REFUSED (nothing outside may be asked here).
- rancher's local-path-provisioner and its StorageClass `local-path`, the default: a claim is bound
  once its pod is scheduled (WaitForFirstConsumer) to a `local` PersistentVolume, a new folder under
  that node's folder of the cluster (nodes/<node>/volumes), made by a helper pod on the node (the
  PostgreSQL image: it has a shell); deleting the claim removes the volume and its folder (reclaim
  policy Delete, the helper pod again).

Objects are sent with server-side apply, so applying them again changes nothing.
"""

import json

FIELD_MANAGER = "dbcreds-cluster"
DNS_PORT = 1053  # CoreDNS listens here, unprivileged; the Service maps port 53 to it
COREFILE = f""".:{DNS_PORT} {{
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    cache 30
    reload
    loadbalance
}}
"""
STORAGE_CLASS = "local-path"
LPP_NAMESPACE = "local-path-storage"

_HARDENED = {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "allowPrivilegeEscalation": False,
             "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
             "seccompProfile": {"type": "RuntimeDefault"}}


def coredns(image: str, dns_ip: str, replicas: int) -> list[dict]:
    labels = {"k8s-app": "kube-dns"}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coredns", "namespace": "kube-system"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:coredns"},
         "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"]},
                   {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "system:coredns"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
         "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", "namespace": "kube-system"},
         "data": {"Corefile": COREFILE}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "coredns", "namespace": "kube-system", "labels": labels},
         "spec": {
             "replicas": replicas, "selector": {"matchLabels": labels},
             "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
             "template": {"metadata": {"labels": labels}, "spec": {
                 "serviceAccountName": "coredns", "priorityClassName": "system-cluster-critical",
                 "dnsPolicy": "Default",
                 "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                     {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": labels},
                                                         "topologyKey": "kubernetes.io/hostname"}}]}},
                 "containers": [{
                     "name": "coredns", "image": image, "imagePullPolicy": "Never",
                     "args": ["-conf", "/etc/coredns/Corefile"],
                     "ports": [{"name": "dns", "containerPort": DNS_PORT, "protocol": "UDP"},
                               {"name": "dns-tcp", "containerPort": DNS_PORT, "protocol": "TCP"}],
                     "resources": {"requests": {"cpu": "50m", "memory": "40Mi"}, "limits": {"memory": "170Mi"}},
                     "securityContext": _HARDENED,
                     "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
                     "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 10,
                                       "failureThreshold": 5},
                     "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 2},
                 }],
                 "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
             }}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
         "spec": {"clusterIP": dns_ip, "selector": labels,
                  "ports": [{"name": "dns", "port": 53, "targetPort": DNS_PORT, "protocol": "UDP"},
                            {"name": "dns-tcp", "port": 53, "targetPort": DNS_PORT, "protocol": "TCP"}]}},
    ]


def local_path_provisioner(image: str, helper_image: str, node_paths: dict[str, str]) -> list[dict]:
    """node_paths: each node's folder for volumes."""
    labels = {"app": "local-path-provisioner"}
    sa = "local-path-provisioner-service-account"
    config = {"nodePathMap": [{"node": node, "paths": [path]} for node, path in node_paths.items()]}
    helper_pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "helper-pod"},
        "spec": {"priorityClassName": "system-node-critical",
                 "tolerations": [{"key": "node.kubernetes.io/disk-pressure", "operator": "Exists",
                                  "effect": "NoSchedule"}],
                 "containers": [{"name": "helper-pod", "image": helper_image, "imagePullPolicy": "Never",
                                 "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                                               "limits": {"memory": "64Mi"}}}]}}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LPP_NAMESPACE}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": LPP_NAMESPACE}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "local-path-provisioner-role", "namespace": LPP_NAMESPACE},
         "rules": [{"apiGroups": [""], "resources": ["pods"],
                    "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "local-path-provisioner-role"},
         "rules": [{"apiGroups": [""], "resources": ["nodes", "persistentvolumeclaims", "configmaps", "pods",
                                                     "pods/log"], "verbs": ["get", "list", "watch"]},
                   {"apiGroups": [""], "resources": ["persistentvolumes"],
                    "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"]},
                   {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
                   {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"],
                    "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "local-path-provisioner-bind", "namespace": LPP_NAMESPACE},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "local-path-provisioner-role"},
         "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": LPP_NAMESPACE}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "local-path-provisioner-bind"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "local-path-provisioner-role"},
         "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": LPP_NAMESPACE}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "local-path-config", "namespace": LPP_NAMESPACE},
         "data": {"config.json": json.dumps(config, indent=2),
                  "setup": '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
                  "teardown": '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
                  "helperPod.yaml": json.dumps(helper_pod, indent=2)}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "local-path-provisioner", "namespace": LPP_NAMESPACE, "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {
                      "serviceAccountName": sa, "priorityClassName": "system-cluster-critical",
                      "containers": [{
                          "name": "local-path-provisioner", "image": image, "imagePullPolicy": "Never",
                          "command": ["/usr/bin/local-path-provisioner", "--debug", "start",
                                      "--config", "/etc/config/config.json", "--helper-image", helper_image],
                          "env": [{"name": "POD_NAMESPACE",
                                   "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                                  {"name": "CONFIG_MOUNT_PATH", "value": "/etc/config/"}],
                          "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
                          "securityContext": _HARDENED,
                          "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/config/"}]}],
                      "volumes": [{"name": "config-volume", "configMap": {"name": "local-path-config"}}]}}}},
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
         "metadata": {"name": STORAGE_CLASS, "annotations": {
             "storageclass.kubernetes.io/is-default-class": "true",
             # local PersistentVolumes (with the node's affinity), not hostPath: kubelet gives a local
             # volume the pod's fsGroup.
             "defaultVolumeType": "local"}},
         "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer",
         "reclaimPolicy": "Delete"},
    ]


#: (apiVersion, kind) -> (the API path's group prefix, plural, namespaced)
_RESOURCES = {
    ("v1", "Namespace"): ("api/v1", "namespaces", False),
    ("v1", "ServiceAccount"): ("api/v1", "serviceaccounts", True),
    ("v1", "ConfigMap"): ("api/v1", "configmaps", True),
    ("v1", "Service"): ("api/v1", "services", True),
    ("v1", "Pod"): ("api/v1", "pods", True),
    ("v1", "PersistentVolumeClaim"): ("api/v1", "persistentvolumeclaims", True),
    ("apps/v1", "Deployment"): ("apis/apps/v1", "deployments", True),
    ("apps/v1", "StatefulSet"): ("apis/apps/v1", "statefulsets", True),
    ("batch/v1", "Job"): ("apis/batch/v1", "jobs", True),
    ("policy/v1", "PodDisruptionBudget"): ("apis/policy/v1", "poddisruptionbudgets", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("apis/networking.k8s.io/v1", "networkpolicies", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"):
        ("apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    ("rbac.authorization.k8s.io/v1", "Role"): ("apis/rbac.authorization.k8s.io/v1", "roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    ("storage.k8s.io/v1", "StorageClass"): ("apis/storage.k8s.io/v1", "storageclasses", False),
}


def object_path(obj: dict) -> str:
    """The API path of an object (of the kinds above)."""
    prefix, plural, namespaced = _RESOURCES[(obj["apiVersion"], obj["kind"])]
    meta = obj["metadata"]
    middle = f"/namespaces/{meta.get('namespace', 'default')}" if namespaced else ""
    return f"/{prefix}{middle}/{plural}/{meta['name']}"
