"""Load on a Vault cluster through one of the stack's AppRole clients, as its apps would put it: workers
that issue, renew and revoke credentials in a loop, each moving to the next node when the one it uses
does not answer or cannot serve; and what happened, in time, when a node was lost.

    load = ClusterLoad(addresses, ca_file, access, creds_path, workers=20)
    load.start()            # each worker logs in and holds one lease it keeps (`held`)
    ...                     # kill a node
    load.stop()
    recovery(load.events, killed_at)   # seconds to the first success and to a steady rate, errors between
"""

import statistics
import threading
import time
from dataclasses import dataclass, field

from typing import Callable

import hvac
import requests
from requests.adapters import HTTPAdapter

from components.vault.checks import renew, revoke


class _NameVerifiedAdapter(HTTPAdapter):
    def __init__(self, server_hostname: str):
        self._server_hostname = server_hostname
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs.update(server_hostname=self._server_hostname, assert_hostname=self._server_hostname)
        super().init_poolmanager(*args, **kwargs)


def name_verified_session(server_hostname: str, ca_file: str) -> requests.Session:
    """An HTTPS session that connects to whatever address its URLs name (a Service's cluster IP, reached
    through the cluster's network), sending and verifying server_hostname (the Service's DNS name,
    which its certificate carries) against ca_file, as a client inside the cluster would."""
    session = requests.Session()
    session.verify = ca_file  # hvac takes a given session's own.
    session.mount("https://", _NameVerifiedAdapter(server_hostname))
    return session


@dataclass(frozen=True)
class Event:
    started: float
    ended: float
    ok: bool
    #: The error's type when not ok, and the start of its message.
    error: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Held:
    """A lease a worker took at the start and kept."""

    lease_id: str
    username: str
    password: str


@dataclass
class ClusterLoad:
    addresses: list[str]
    ca_file: str
    #: The client's AppRole login: approle_mount, role_id, secret_id.
    access: dict
    creds_path: str
    workers: int = 20
    #: Per request: a node that does not answer is left after this.
    timeout: float = 2.0
    #: Makes each worker's HTTP session (None: hvac's own): a client reaching a Service by its address
    #: while verifying the name its certificate carries (`name_verified_session`).
    session: Callable[[], requests.Session] | None = None
    events: list[Event] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, node: int, token: str | None = None) -> hvac.Client:
        session = self.session() if self.session else None
        return hvac.Client(url=self.addresses[node % len(self.addresses)], token=token, verify=self.ca_file,
                           timeout=self.timeout, session=session)

    def _record(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def _until_ok(self, node: int, action) -> tuple[int, object]:
        """Runs action(node) until it succeeds, moving to the next node after each failure."""
        while not self._stop.is_set():
            try:
                return node, action(node)
            except Exception:  # noqa: BLE001 - any failure: try the next node
                node += 1
                time.sleep(0.05)
        raise RuntimeError("stopped")

    def _work(self, index: int, ready: threading.Barrier) -> None:
        def login(node: int) -> str:
            vault = self.client(node)
            vault.auth.approle.login(role_id=self.access["role_id"], secret_id=self.access["secret_id"],
                                     mount_point=self.access["approle_mount"])
            return vault.token

        node, token = self._until_ok(index, login)
        node, secret = self._until_ok(node, lambda n: self.client(n, token).read(self.creds_path))
        with self._lock:
            self.held.append(Held(secret["lease_id"], secret["data"]["username"], secret["data"]["password"]))
        ready.wait()
        while not self._stop.is_set():
            started = time.monotonic()
            vault = self.client(node, token)
            try:
                lease = vault.read(self.creds_path)["lease_id"]
                try:
                    renew(vault, lease, 60)
                finally:
                    revoke(vault, lease)
                self._record(Event(started, time.monotonic(), True))
            except Exception as error:  # noqa: BLE001 - recorded, then the next node
                self._record(Event(started, time.monotonic(), False, type(error).__name__, str(error)[:160]))
                node += 1
                time.sleep(0.05)

    def start(self) -> None:
        """Starts the workers; returns once each has logged in and holds its kept lease."""
        ready = threading.Barrier(self.workers + 1)
        self._threads = [threading.Thread(target=self._work, args=(i, ready), daemon=True)
                         for i in range(self.workers)]
        for thread in self._threads:
            thread.start()
        ready.wait(timeout=120)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


@dataclass(frozen=True)
class Recovery:
    #: Credentials per second over the seconds before the loss (median of 1-second windows).
    rate_before: float
    #: From the loss to the end of the first operation that started after it and succeeded.
    first_success: float | None
    #: From the loss to the end of the first 1-second window at 80 % of rate_before or more.
    steady: float | None
    #: Operations that failed between the loss and the steady rate.
    errors: int
    error_types: dict[str, int]


def recovery(events: list[Event], lost_at: float, window: float = 1.0, before: float = 5.0) -> Recovery:
    """How the load recovered from a node lost at lost_at."""
    def per_window(start: float, end: float) -> list[int]:
        ends = [e.ended for e in events if e.ok and start <= e.ended < end]
        return [sum(1 for t in ends if start + i * window <= t < start + (i + 1) * window)
                for i in range(int((end - start) / window))]

    rate = statistics.median(per_window(lost_at - before, lost_at) or [0]) / window
    after = [e for e in events if e.started >= lost_at]
    first = min((e.ended for e in after if e.ok), default=None)
    last = max((e.ended for e in events), default=lost_at)
    steady = None
    t = lost_at
    while t + window <= last:
        if sum(1 for e in events if e.ok and t <= e.ended < t + window) >= 0.8 * rate * window:
            steady = t + window
            break
        t += window / 10
    until = steady if steady is not None else last
    failed = [e for e in events if not e.ok and lost_at <= e.ended <= until]
    types: dict[str, int] = {}
    for e in failed:
        types[e.error] = types.get(e.error, 0) + 1
    return Recovery(rate_before=rate, first_success=None if first is None else first - lost_at,
                    steady=None if steady is None else steady - lost_at, errors=len(failed), error_types=types)


def timeline(events: list[Event], start: float, end: float, step: float = 2.0) -> list[str]:
    """Per step seconds from start to end: the operations that ended then, ok and failed, and one
    failure's message: what a run went through, to read when a recovery is slow."""
    lines = []
    t = start
    while t < end:
        window = [e for e in events if t <= e.ended < t + step]
        failed = [e for e in window if not e.ok]
        sample = f" e.g. {failed[0].error}: {failed[0].detail}" if failed else ""
        lines.append(f"{t - start:6.1f}s ok {sum(e.ok for e in window):4d} failed {len(failed):4d}{sample}")
        t += step
    return lines
