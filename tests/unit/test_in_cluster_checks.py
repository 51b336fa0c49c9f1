"""The in-cluster checks' run (`components.kubernetes.checks._run`) without a cluster: what the Job's
pod is given of the plan, and the raft voters checked from this machine."""

import contextlib
import json
from types import SimpleNamespace

from components.kubernetes import checks


def run(monkeypatch, plan: dict) -> tuple[dict, dict, list[str]]:
    """Runs the checks on plan with kubectl and Vault faked: the report, the plan the pod got, and the
    tokens revoked."""
    applied, revoked = {}, []

    def kubectl(_props, *args, stdin=None, check=True):
        if args[0] == "apply":
            secret = json.loads(stdin)["items"][0]
            applied.update(json.loads(secret["stringData"]["plan.json"]))
        if args[0] == "logs":
            return json.dumps({"passed": True, "checks": [{"name": "in the pod", "passed": True, "detail": ""}]})
        return ""

    token = SimpleNamespace(create=lambda **_kw: {"auth": {"client_token": "minted"}}, revoke=revoked.append)
    monkeypatch.setattr(checks, "_kubectl", kubectl)
    monkeypatch.setattr(checks, "_wait_for_vault", lambda _props: None)
    monkeypatch.setattr(checks, "_wait_for", lambda _props, _job: True)
    monkeypatch.setattr(checks, "pem_file", lambda _pem: contextlib.nullcontext("ca.pem"))
    monkeypatch.setattr(checks, "_admin", lambda _props, _ca: SimpleNamespace(auth=SimpleNamespace(token=token)))
    monkeypatch.setattr(checks, "raft_report", lambda _admin, n: ("", {"peers": n}))
    props = {"name": "checks", "namespace": "ns", "image": "i", "pull": "Never", "code_map": "checks-code",
             "code_paths": [], "plan": plan, "vault": {"address": "https://v", "ca_pem": "", "admin_token": "t"}}
    return checks._run(props), applied, revoked


def test_the_pod_gets_the_plan_with_a_minted_token_and_the_voters_are_checked_from_here(monkeypatch):
    report, applied, revoked = run(monkeypatch, {"clients": [], "static_creds_paths": ["database/static-creds/s"],
                                                 "vault_token": "", "raft_voters": 3})
    assert applied["vault_token"] == "minted" and revoked == ["minted"]
    # The pod's token cannot read raft's configuration: the voters are checked here, with the admin's.
    assert applied["raft_voters"] == 0
    assert [c["name"] for c in report["checks"]] == ["in the pod", "the 3 OpenBao nodes are raft voters"]
    assert report["passed"] and report["vault_cluster"] == {"peers": 3}


def test_the_pod_gets_no_token_it_was_not_minted(monkeypatch):
    report, applied, revoked = run(monkeypatch, {"clients": [], "vault_token": "an admin's", "raft_voters": 0})
    assert applied["vault_token"] == "" and revoked == []
    assert [c["name"] for c in report["checks"]] == ["in the pod"]
