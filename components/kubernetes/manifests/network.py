"""The namespace's NetworkPolicies: ingress denied by default, then opened only Vault -> database,
Vault's nodes to each other, and labelled clients -> Vault/database."""

from typing import Any, Sequence

from components.kubernetes.manifests.common import DB_APP, DB_PORT, VAULT_APP, VAULT_CLUSTER_PORT, VAULT_PORT, labels

#: Pods with these labels may reach Vault's API, or the database.
VAULT_CLIENT_LABEL = {"dbcreds.io/vault-client": "true"}
DB_CLIENT_LABEL = {"dbcreds.io/database-client": "true"}


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
