"""`make rotate-audit`: which moved logs go, and KEEP read before anything is touched."""

from pathlib import Path

import pytest

from components.servers.openbao import rotated_beyond
from toolchain.rotate_audit import RotateError, parse_keep

MOVED = [Path(f"/a/audit.log.2026120{d}T000000.000000Z") for d in (3, 1, 2)]


def test_all_but_the_newest_kept_go_oldest_first():
    assert rotated_beyond(MOVED, 2) == [Path("/a/audit.log.20261201T000000.000000Z")]
    assert rotated_beyond(MOVED, 5) == []


@pytest.mark.parametrize("raw", ["0", "-1", "x", "1.5"])
def test_a_keep_that_is_no_count_is_named(raw):
    with pytest.raises(RotateError, match=f"KEEP={raw!r}"):
        parse_keep(raw)


def test_keep_is_a_count():
    assert parse_keep("7") == 7
