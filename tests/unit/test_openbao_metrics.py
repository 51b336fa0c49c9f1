"""The metrics' alert signals, read from Prometheus' text as OpenBao 2.7 serves it."""

import pytest

from components.servers.openbao import openbao_hcl
from components.servers.openbao_metrics import MetricsError, samples, signals

SERVED = """# HELP vault_core_unsealed vault_core_unsealed
# TYPE vault_core_unsealed gauge
vault_core_unsealed{cluster=""} 0
vault_core_unsealed{cluster="vault-cluster-49f8a4bd"} 1
vault_core_active{cluster="vault-cluster-49f8a4bd"} 1
vault_expire_num_leases 7
vault_expire_num_irrevocable_leases 1
vault_audit_log_request_failure 2
vault_audit_log_response_failure 0
vault_expire_revoke{quantile="0.5"} 1.2168320417404175
vault_expire_revoke_count 1
go_goroutines 93
"""


def test_signals_are_what_an_operator_alerts_on():
    assert signals(SERVED) == {"unsealed": 1, "active": 1, "leases": 7, "irrevocable_leases": 1,
                               "audit_failures": 2}


def test_a_standby_reports_no_active_gauge_and_a_sealed_one_zero():
    standby = "\n".join(line for line in SERVED.splitlines() if not line.startswith("vault_core_active"))
    assert signals(standby)["active"] == 0
    sealed = SERVED.replace('vault_core_unsealed{cluster="vault-cluster-49f8a4bd"} 1',
                            'vault_core_unsealed{cluster="vault-cluster-49f8a4bd"} 0')
    assert signals(sealed)["unsealed"] == 0


def test_text_without_the_core_metrics_is_named():
    with pytest.raises(MetricsError, match="no vault_core_unsealed, vault_expire_num_leases"):
        signals("go_goroutines 93\n")


def test_samples_skip_comments_and_keep_labels():
    found = samples(SERVED)
    assert found["vault_expire_revoke"] == [('{quantile="0.5"}', 1.2168320417404175)]
    assert "# HELP" not in "".join(found)


def test_every_server_config_has_telemetry_behind_a_token():
    hcl = openbao_hcl(raft_path="/d", listen="127.0.0.1:1", cluster_listen="127.0.0.1:2", tls_dir="/t",
                      audit_file="/a/audit.log")
    assert 'prometheus_retention_time = "24h"' in hcl and "disable_hostname          = true" in hcl
    # The listener never opens them to anyone (OpenBao's default: a token is needed).
    assert "unauthenticated_metrics_access" not in hcl
