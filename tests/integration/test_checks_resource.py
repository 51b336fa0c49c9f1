"""The post-deploy checks as a resource inside a real `pulumi up`: it runs on every update,
fails the update when a check fails, and reports without secrets."""

import dataclasses
import json

import pytest
from pulumi import automation as auto

from tests.automation import state_text, temporary_stack
from tests.support.demo import client_checks
from toolchain.env import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "checks"


def quiet(_line: str) -> None:
    """Keeps engine output out of the test log."""


def configure(stack, engine_env, clients) -> None:
    db, _vault, _clients, target = engine_env
    stack.set_all_config({
        "target": auto.ConfigValue(json.dumps(dataclasses.asdict(target))),
        "clients": auto.ConfigValue(json.dumps([dataclasses.asdict(c) for c in clients]), secret=True),
        "admin": auto.ConfigValue(db.admin),
        "bootstrap_password": auto.ConfigValue(db.admin_password, secret=True),
    })


def test_checks_run_on_every_up_and_fail_it_when_a_check_fails(engine_env, tmp_path):
    db, _vault, clients, _target = engine_env
    with temporary_stack(FIXTURE, tmp_path, "checks") as stack:
        configure(stack, engine_env, client_checks(clients))
        first = stack.up(on_output=quiet)
        report = first.outputs["checks"].value
        assert report["passed"] and not first.outputs["checks"].secret
        assert {c["name"] for c in report["checks"]} >= {"reader: revoked user cannot log in",
                                                         "a plaintext connection is refused"}
        # Secrets stay out of the report and, as plaintext, out of the state.
        state = state_text(stack)
        for secret in (db.admin_password, clients["app"].secret_id, clients["reader"].secret_id):
            assert secret not in json.dumps(report) and secret not in state

        # A second up runs the checks again (an update), nothing else changes.
        assert stack.preview(on_output=quiet).change_summary == {"same": 1, "update": 1}
        assert stack.up(on_output=quiet).summary.resource_changes == {"same": 1, "update": 1}

        # A failing check fails the up, with the report's failure in the error.
        configure(stack, engine_env, client_checks(clients, reader_forbidden=["SELECT count(*) FROM users"]))
        with pytest.raises(auto.CommandError, match="forbidden statements are refused: allowed: SELECT"):
            stack.up(on_output=quiet)
