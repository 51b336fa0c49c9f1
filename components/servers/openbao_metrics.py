"""OpenBao's metrics, as an operator's monitoring reads them: Prometheus text from `sys/metrics`, which
answers only a token allowed to read it (every server the stack runs has a `telemetry` block:
`components.servers.openbao.openbao_hcl`). `signals` picks out what to alert on; `metrics_report`
proves the endpoint is served, refused without a token, and gives them (the post-deploy checks' step).
"""

import math
import re

import hvac

#: Where a scraper reads them (with a token whose policy reads `sys/metrics`).
METRICS_PATH = "/v1/sys/metrics?format=prometheus"

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


class MetricsError(ValueError):
    """What OpenBao served is not the metrics an operator would alert on."""


def samples(text: str) -> dict[str, list[tuple[str, float]]]:
    """Metric name -> (labels, value) of each sample in Prometheus' text format; comments skipped."""
    found: dict[str, list[tuple[str, float]]] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if match and not line.startswith("#"):
            name, labels, value = match.groups()
            try:
                found.setdefault(name, []).append((labels or "", float(value)))
            except ValueError:
                continue
    return found


def signals(text: str) -> dict[str, int]:
    """The figures an operator alerts on (README's list): sealed or not, active node or not, leases
    outstanding, leases Vault gave up revoking, audit writes that failed. Missing core metrics (not
    OpenBao's, or telemetry off) raise MetricsError naming them."""
    found = samples(text)
    missing = [name for name in ("vault_core_unsealed", "vault_expire_num_leases") if name not in found]
    if missing:
        raise MetricsError(f"no {', '.join(missing)} in what {METRICS_PATH} served")

    def gauge(name: str) -> int:
        # Per-cluster gauges carry a `cluster` label; the unlabelled twin is emitted before the name is known.
        values = [value for labels, value in found.get(name, []) if 'cluster=""' not in labels]
        return int(max(values)) if values and not any(math.isnan(v) for v in values) else 0

    return {
        "unsealed": gauge("vault_core_unsealed"),
        "active": gauge("vault_core_active"),
        "leases": gauge("vault_expire_num_leases"),
        "irrevocable_leases": gauge("vault_expire_num_irrevocable_leases"),
        "audit_failures": gauge("vault_audit_log_request_failure") + gauge("vault_audit_log_response_failure"),
    }


#: The post-deploy check `metrics_report` is.
CHECK_NAME = "OpenBao serves its metrics (Prometheus) to a token, and only to one"


def metrics_report(vault: hvac.Client, anonymous: hvac.Client) -> tuple[str, dict[str, int]]:
    """What is wrong (empty: nothing) with the metrics of the node `vault` reaches: served to its token,
    refused to `anonymous` (the same address, no token), reporting unsealed; and their signals."""
    refused = anonymous.adapter.get(METRICS_PATH, raise_exception=False)
    if getattr(refused, "status_code", 200) not in (400, 401, 403):
        return f"without a token it answered {getattr(refused, 'status_code', 200)}", {}
    served = vault.adapter.get(METRICS_PATH, raise_exception=False)
    if getattr(served, "status_code", None) != 200:
        answered = getattr(served, "status_code", "JSON, not Prometheus' text")
        return f"with the stack's token it answered {answered}", {}
    try:
        found = signals(served.text)
    except MetricsError as error:
        return str(error), {}
    return ("" if found["unsealed"] == 1 else "it reports sealed"), found
