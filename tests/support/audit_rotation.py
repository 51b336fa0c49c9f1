"""An audit log rotated while a client's requests keep coming, and the requests found in the files after."""

import collections
import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Callable, Iterable

import hvac
from hvac import exceptions as vault_errors

from tests.support.waiting import wait_for


def rotated_under_requests(vault: hvac.Client, audit: Path, rotate: Callable[[], list[str]],
                           times: int = 2) -> tuple[list[Path], str, int]:
    """rotate() `times` times, each once the requests are being written to `audit` (the file it moves),
    while one client reads `cubbyhole/<marker>/<n>`, n counting up; waits for them in the reopened file.
    The moved files, the marker and how many requests were sent."""
    marker = f"rotation-{os.urandom(4).hex()}"
    stop = threading.Event()
    sent = []

    def requests_in_flight():
        while not stop.is_set():
            with contextlib.suppress(vault_errors.InvalidPath):
                vault.read(f"cubbyhole/{marker}/{len(sent)}")
            sent.append(1)

    def written():
        return audit.exists() and marker in audit.read_text()

    worker = threading.Thread(target=requests_in_flight)
    worker.start()
    moved = []
    try:
        for _ in range(times):
            wait_for(written, "the requests in the audit log", 30)
            moved += [Path(path) for path in rotate()]
        wait_for(written, "the requests in the reopened log", 30)
    finally:
        stop.set()
        worker.join(timeout=60)
    return moved, marker, len(sent)


def audited(files: Iterable[Path], marker: str) -> collections.Counter:
    """How often each request and response under `cubbyhole/<marker>/` is in the files, by (type, path)."""
    found = collections.Counter()
    for path in files:
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            request_path = entry.get("request", {}).get("path", "")
            if request_path.startswith(f"cubbyhole/{marker}/"):
                found[entry["type"], request_path] += 1
    return found


def each_once(marker: str, sent: int) -> collections.Counter:
    """What `audited` finds when each of `sent` requests and its response is in exactly one file, once."""
    return collections.Counter({(kind, f"cubbyhole/{marker}/{n}"): 1 for n in range(sent)
                                for kind in ("request", "response")})
