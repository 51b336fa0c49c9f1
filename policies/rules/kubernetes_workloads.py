"""The kubernetes target's workloads: hardened pods, OpenBao's pods spread over nodes (stack-wide),
and the database's namespace isolated by network policies (stack-wide)."""

import re
from typing import Any, Iterable, Mapping

from policies.rules.common import NETWORK_POLICY, PDB, STATEFULSET, Report, is_openbao


def _pod_spec(statefulset: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((statefulset.get("spec") or {}).get("template") or {}).get("spec") or {}


#: Where Kubernetes mounts a pod's API token.
API_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
#: Audiences the API server takes (its own, the default of a projected token with none).
API_AUDIENCE = re.compile(r"^(https://)?kubernetes\.default\.svc(\.|$|:)")


def _api_token_volumes(pod: Mapping[str, Any]) -> list[str]:
    """The pod's projected volumes whose service account token the API server accepts: with no audience
    (the API server's own) or the API server's. A token with an audience of its own (the OpenBao
    agent's, for Vault's Kubernetes auth) is no API token: the API server refuses it."""
    found = []
    for volume in pod.get("volumes") or []:
        for source in (volume.get("projected") or {}).get("sources") or []:
            token = source.get("serviceAccountToken")
            if token is not None and (not token.get("audience") or API_AUDIENCE.match(str(token["audience"]))):
                found.append(volume.get("name"))
    return found


def workload_hardened(props: Mapping[str, Any], _config: Mapping[str, Any], report: Report) -> None:
    """A StatefulSet's or Deployment's pods: non-root, no privilege escalation, read-only root, no
    capabilities, requests and limits, no host namespace, and no API token: never automounted, and
    projected only into OpenBao's pods (by their app label), at the standard path and read-only, where
    Kubernetes auth reviews the tokens pods log in with (TokenReview, bound to system:auth-delegator)."""
    pod = _pod_spec(props)
    pod_security = pod.get("securityContext") or {}
    if pod.get("automountServiceAccountToken") is not False:
        report("spec.template.spec.automountServiceAccountToken is not false: the pods need no API token")
    template_labels = (((props.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    openbao = template_labels.get("app.kubernetes.io/name") == "openbao"
    for volume in _api_token_volumes(pod):
        mounts = [m for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
                  for m in c.get("volumeMounts") or [] if m.get("name") == volume]
        if not openbao:
            report(f"volume {volume} projects an API token: only OpenBao's pods carry one (Kubernetes auth's "
                   "token reviews); give a token for Vault an audience of its own")
        elif any(m.get("mountPath", "").rstrip("/") != API_TOKEN_DIR or m.get("readOnly") is not True for m in mounts):
            report(f"volume {volume} (OpenBao's API token) is mounted elsewhere than {API_TOKEN_DIR}, or writable")
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            report(f"spec.template.spec.{key} is true: keep the pods in their own namespaces")
    # The engine hands props over as read-only proxies: unpack, never concatenate.
    for container in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        name = container.get("name", "?")
        security = container.get("securityContext") or {}
        if not (security.get("runAsNonRoot") or pod_security.get("runAsNonRoot")):
            report(f"container {name}: runAsNonRoot is not set")
        if security.get("allowPrivilegeEscalation") is not False:
            report(f"container {name}: allowPrivilegeEscalation is not false")
        if security.get("readOnlyRootFilesystem") is not True:
            report(f"container {name}: readOnlyRootFilesystem is not true")
        if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
            report(f"container {name}: capabilities do not drop ALL")
        limits = (container.get("resources") or {}).get("limits") or {}
        requests = (container.get("resources") or {}).get("requests") or {}
        if not {"cpu", "memory"} <= set(requests) or "memory" not in limits:
            report(f"container {name}: set cpu and memory requests and a memory limit")


def vault_spread(resources: Iterable[Any], config: Mapping[str, Any], report: Report) -> None:
    """Stack: with `requireSpread`, OpenBao's pods never share a node (required pod anti-affinity on the
    node's hostname) and a PodDisruptionBudget lets at most one of them down at a time."""
    if not config["requireSpread"]:
        return
    resources = list(resources)
    budgets = [r.props.get("spec") or {} for r in resources if r.resource_type == PDB]
    for statefulset in (r for r in resources if r.resource_type == STATEFULSET and is_openbao(r)):
        affinity = (_pod_spec(statefulset.props).get("affinity") or {}).get("podAntiAffinity") or {}
        terms = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or []
        if not any(t.get("topologyKey") == "kubernetes.io/hostname" for t in terms):
            report(f"StatefulSet {statefulset.name}: no required pod anti-affinity on kubernetes.io/hostname: two "
                   "OpenBao pods could share a node and go down with it")
        labels = ((((statefulset.props.get("spec") or {}).get("template") or {}).get("metadata") or {})
                  .get("labels") or {})
        guarding = [b for b in budgets
                    if all(labels.get(k) == v for k, v in ((b.get("selector") or {}).get("matchLabels") or {}).items())
                    and (b.get("selector") or {}).get("matchLabels")]
        if not any(b.get("maxUnavailable") in (1, "1") for b in guarding):
            report(f"StatefulSet {statefulset.name}: no PodDisruptionBudget with maxUnavailable 1 selects its pods: a "
                   "drain could take several OpenBao nodes at once")


def _selects(policy: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    selector = ((policy.get("spec") or {}).get("podSelector") or {}).get("matchLabels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def database_isolated(resources: Iterable[Any], _config: Mapping[str, Any], report: Report) -> None:
    """Stack: with a database StatefulSet, its namespace denies ingress by default and a policy opens
    the database's pods to named sources only."""
    resources = list(resources)
    databases = [r for r in resources if r.resource_type == STATEFULSET
                 and ((r.props.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/name")
                 == "postgres"]
    policies = [r.props for r in resources if r.resource_type == NETWORK_POLICY]
    for db in databases:
        labels = ((((db.props.get("spec") or {}).get("template") or {}).get("metadata") or {})
                  .get("labels") or {})
        if not any(((p.get("spec") or {}).get("podSelector") or {}) == {} and not (p.get("spec") or {}).get("ingress")
                   for p in policies):
            report("no default-deny ingress NetworkPolicy in the database's namespace")
        opening = [p for p in policies if _selects(p, labels) and (p.get("spec") or {}).get("ingress")]
        if not opening:
            report("no NetworkPolicy opens the database's pods to Vault and its clients only")
        for policy in opening:
            for rule in policy["spec"]["ingress"]:
                if not rule.get("from"):
                    report("a NetworkPolicy lets any pod reach the database: list the sources in `from`")
