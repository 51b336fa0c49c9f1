"""The rotation schedule's decisions (components.vault.rotation), with the clock set by the test."""

import pytest

from components.vault import rotation
from components.vault.rotation import _RotationProvider


@pytest.fixture
def clock(monkeypatch):
    now = {"t": 1_000_000.0}
    monkeypatch.setattr(rotation.time, "time", lambda: now["t"])
    return now


def test_made_now_then_replaced_once_due(clock):
    provider = _RotationProvider()
    made = provider.create({"rotate_after": 100})
    assert made.outs == {"rotate_after": 100, "created_at": 1_000_000}
    clock["t"] += 99
    assert not provider.diff(made.id, made.outs, {"rotate_after": 100}).changes
    clock["t"] += 1
    due = provider.diff(made.id, made.outs, {"rotate_after": 100})
    assert due.changes and due.replaces == ["created_at"]


def test_a_new_period_is_an_update_that_keeps_the_start(clock):
    provider = _RotationProvider()
    made = provider.create({"rotate_after": 100})
    changed = provider.diff(made.id, made.outs, {"rotate_after": 50})
    assert changed.changes and not changed.replaces
    assert provider.update(made.id, made.outs, {"rotate_after": 50}).outs == {"rotate_after": 50,
                                                                              "created_at": 1_000_000}
    # Counted from the start: 60 s in, a 50 s period is due.
    clock["t"] += 60
    assert provider.diff(made.id, {"rotate_after": 50, "created_at": 1_000_000}, {"rotate_after": 50}).replaces


def test_what_it_rotates_is_named_and_a_new_name_is_an_update(clock):
    provider = _RotationProvider()
    made = provider.create({"rotate_after": 100, "rotates": "database/rotate-root/app"})
    assert made.outs["rotates"] == "database/rotate-root/app"
    assert not provider.diff(made.id, made.outs, {"rotate_after": 100, "rotates": "database/rotate-root/app"}).changes
    renamed = provider.diff(made.id, made.outs, {"rotate_after": 100, "rotates": "database/rotate-root/other"})
    assert renamed.changes and not renamed.replaces


def test_a_period_must_be_positive():
    with pytest.raises(ValueError, match="rotate_after must be positive"):
        rotation.Rotation("r", rotate_after=0)
