"""The Kubernetes objects of the `kubernetes` target, as pure functions returning manifests, by what
they render:

- `common`: what every object shares: labels and metadata, pod and container security (non-root, a
  read-only root filesystem, no capabilities), requests and limits, pull policies, volume claims,
  Services, disruption budgets, anti-affinity, tolerations, a pod's projected API token;
- `addresses`: Service and pod host names, and the names a server's certificate carries;
- `network`: the NetworkPolicies (ingress denied by default; opened only Vault -> database, Vault's
  nodes to each other, and labelled clients -> Vault/database) and the clients' labels;
- `openbao`: OpenBao's StatefulSet of raft nodes, its config and its audit log's rotating sidecar;
- `postgres`: PostgreSQL's StatefulSet and its bootstrap ConfigMap's files.

The components (`components.kubernetes.vault`, `components.kubernetes.postgres`,
`components.kubernetes.namespace`) hand these to pulumi-kubernetes; tests read them directly and in
the rendered YAML. Every public name is importable from here, as callers use them. TLS material and
keys come from Secrets, never from the image.
"""

from components.kubernetes.manifests.addresses import (
    CLUSTER_DOMAIN, internal_service, pod_host, pod_names, server_dns_names, service_host)
from components.kubernetes.manifests.common import (
    API_TOKEN_DIR, API_TOKEN_SECONDS, DB_APP, DB_PORT, SKIP_AWAIT, VAULT_APP, VAULT_CLUSTER_PORT, VAULT_PORT,
    anti_affinity, api_token_volume, container_security, disruption_budget, labels, metadata,
    node_loss_tolerations, pod_security, pull_policy, resources, service, volume_claim)
from components.kubernetes.manifests.network import DB_CLIENT_LABEL, VAULT_CLIENT_LABEL, network_policies
from components.kubernetes.manifests.openbao import (
    ALIVE_PATH, AUDIT_KEEP, AUDIT_MAX_BYTES, NODE_LOSS_TOLERATION_SECONDS, OPENBAO_DIR, READY_PATH, ROTATOR_CONTAINER,
    ROTATOR_DIR, ROTATOR_SCRIPT, VAULT_UID, audit_rotator, openbao_config, openbao_statefulset)
from components.kubernetes.manifests.postgres import (
    DB_UID, postgres_bootstrap_files, postgres_statefulset)

__all__ = [
    "CLUSTER_DOMAIN", "internal_service", "pod_host", "pod_names", "server_dns_names", "service_host",
    "API_TOKEN_DIR", "API_TOKEN_SECONDS", "DB_APP", "DB_PORT", "SKIP_AWAIT", "VAULT_APP", "VAULT_CLUSTER_PORT",
    "VAULT_PORT", "anti_affinity", "api_token_volume", "container_security", "disruption_budget", "labels",
    "metadata", "node_loss_tolerations", "pod_security", "pull_policy", "resources", "service", "volume_claim",
    "DB_CLIENT_LABEL", "VAULT_CLIENT_LABEL", "network_policies",
    "ALIVE_PATH", "AUDIT_KEEP", "AUDIT_MAX_BYTES", "NODE_LOSS_TOLERATION_SECONDS", "OPENBAO_DIR", "READY_PATH",
    "ROTATOR_CONTAINER", "ROTATOR_DIR", "ROTATOR_SCRIPT", "VAULT_UID", "audit_rotator", "openbao_config",
    "openbao_statefulset",
    "DB_UID", "postgres_bootstrap_files", "postgres_statefulset",
]
