"""Post-deploy checks: prove with real credentials that the stack does what it says.

For each client: log in with AppRole, issue credentials, connect with
verify-full, run the statements its grants allow and see the forbidden ones
refused, renew the lease, revoke it and see the user refused at login. Then:
one client cannot read another's creds path, the database's bootstrap admin
password no longer works (root rotation), and a plaintext connection is refused.

Each check is a pure sequence of hvac and psycopg calls that returns a
`CheckResult`; `run_checks` returns a report without secrets.
"""

import contextlib
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import hvac
import psycopg
from psycopg import errors


@dataclass(frozen=True)
class Target:
    """Where Vault and the database are, and the CAs that verify them."""

    vault_addr: str
    vault_ca_pem: str
    db_host: str
    db_port: int
    db_name: str
    db_ca_pem: str


@dataclass(frozen=True)
class ClientCheck:
    """One client: its AppRole login, its creds path, what it may and may not run."""

    name: str
    approle_mount: str
    role_id: str
    secret_id: str
    creds_path: str
    allowed: Sequence[str]
    forbidden: Sequence[str]


@dataclass
class CheckResult:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class Report:
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    def as_dict(self) -> dict:
        return {"passed": self.passed, "seconds": round(self.seconds, 1),
                "checks": [asdict(r) for r in self.results]}

    def failures(self) -> str:
        return "; ".join(f"{r.name}: {r.detail}" for r in self.results if not r.passed)


class CaFiles:
    """The CA files hvac and libpq read, in a private temporary folder."""

    def __init__(self, target: Target):
        self._dir = tempfile.TemporaryDirectory(prefix="dbcreds-checks-")
        self.vault_ca = Path(self._dir.name) / "vault-ca.pem"
        self.db_ca = Path(self._dir.name) / "db-ca.pem"
        self.vault_ca.write_text(target.vault_ca_pem)
        self.db_ca.write_text(target.db_ca_pem)

    def close(self) -> None:
        self._dir.cleanup()


def _connect(target: Target, files: CaFiles, user: str, password: str, sslmode: str = "verify-full"):
    return psycopg.connect(
        host=target.db_host, port=target.db_port, dbname=target.db_name, user=user, password=password,
        sslmode=sslmode, sslrootcert=str(files.db_ca), connect_timeout=10, autocommit=True,
    )


def _login(target: Target, files: CaFiles, client: ClientCheck) -> hvac.Client:
    vault = hvac.Client(url=target.vault_addr, verify=str(files.vault_ca), timeout=15)
    vault.auth.approle.login(role_id=client.role_id, secret_id=client.secret_id, mount_point=client.approle_mount)
    return vault


def _refused_login(target: Target, files: CaFiles, user: str, password: str) -> str:
    """Empty when the database refuses this login, else what happened."""
    try:
        _connect(target, files, user, password).close()
    except psycopg.OperationalError as error:
        return "" if "password authentication failed" in str(error) else f"refused, but not for the password: {error}"
    return "the login was accepted"


def check_client(target: Target, files: CaFiles, client: ClientCheck) -> list[CheckResult]:
    """The whole credential lifecycle of one client."""
    results = []

    def step(name: str, action: Callable[[], str]) -> bool:
        try:
            problem = action()
        except Exception as error:  # noqa: BLE001 - a failed check is reported, not raised
            problem = f"{type(error).__name__}: {error}"
        results.append(CheckResult(f"{client.name}: {name}", not problem, problem))
        return not problem

    state: dict = {}

    def login() -> str:
        state["vault"] = _login(target, files, client)
        return ""

    def issue() -> str:
        secret = state["vault"].read(client.creds_path)
        state["lease"], state["creds"] = secret["lease_id"], secret["data"]
        return "" if secret["lease_duration"] > 0 else "the lease has no duration"

    def allowed() -> str:
        creds = state["creds"]
        with _connect(target, files, creds["username"], creds["password"]) as conn:
            if not conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]:
                return "the connection is not encrypted"
            for statement in client.allowed:
                with conn.transaction(force_rollback=True):
                    conn.execute(statement)
        return ""

    def forbidden() -> str:
        creds = state["creds"]
        with _connect(target, files, creds["username"], creds["password"]) as conn:
            for statement in client.forbidden:
                try:
                    with conn.transaction(force_rollback=True):
                        conn.execute(statement)
                except errors.InsufficientPrivilege:
                    continue
                return f"allowed: {statement}"
        return ""

    def renew() -> str:
        renewed = state["vault"].sys.renew_lease(lease_id=state["lease"])
        return "" if renewed["lease_duration"] > 0 else "renewal gave no time"

    def revoke() -> str:
        # The path form, which the client policy scopes to the client's own creds path.
        state["vault"].adapter.put(f"/v1/sys/leases/revoke/{state['lease']}")
        creds = state["creds"]
        return _refused_login(target, files, creds["username"], creds["password"])

    steps = (("AppRole login", login), ("issue credentials", issue),
             ("allowed statements run over verify-full", allowed),
             ("forbidden statements are refused", forbidden), ("renew the lease", renew),
             ("revoked user cannot log in", revoke))
    for name, action in steps:
        if not step(name, action):
            # Never strand a credential: a failed run still gives its lease back.
            if "lease" in state and name != "revoked user cannot log in":
                with contextlib.suppress(Exception):
                    state["vault"].adapter.put(f"/v1/sys/leases/revoke/{state['lease']}")
            break
    return results


def check_isolation(target: Target, files: CaFiles, client: ClientCheck, others: Sequence[ClientCheck]) -> CheckResult:
    """The client is refused every other client's creds path."""
    name = f"{client.name}: cannot read other clients' credentials"
    try:
        vault = _login(target, files, client)
    except Exception as error:  # noqa: BLE001
        return CheckResult(name, False, f"login failed: {error}")
    for other in others:
        try:
            secret = vault.read(other.creds_path)
        except hvac.exceptions.Forbidden:
            continue
        return CheckResult(name, False, f"read {other.creds_path} (lease {secret['lease_id'] if secret else None})")
    return CheckResult(name, True)


def check_bootstrap_password(target: Target, files: CaFiles, admin: str, bootstrap_password: str) -> CheckResult:
    problem = _refused_login(target, files, admin, bootstrap_password)
    return CheckResult("the bootstrap admin password is rejected (root rotated)", not problem, problem)


def check_plaintext_refused(target: Target, files: CaFiles, admin: str) -> CheckResult:
    name = "a plaintext connection is refused"
    try:
        _connect(target, files, admin, "not-a-password", sslmode="disable").close()
    except psycopg.OperationalError as error:
        refused = "no encryption" in str(error)
        return CheckResult(name, refused, "" if refused else str(error))
    return CheckResult(name, False, "a plaintext connection was accepted")


def run_checks(target: Target, clients: Sequence[ClientCheck], admin: str, bootstrap_password: str) -> Report:
    """Every check, in order; the report holds names and problems, never a secret."""
    files = CaFiles(target)
    started = time.monotonic()
    try:
        report = Report()
        for client in clients:
            report.results += check_client(target, files, client)
            report.results.append(check_isolation(target, files, client, [c for c in clients if c is not client]))
        report.results.append(check_bootstrap_password(target, files, admin, bootstrap_password))
        report.results.append(check_plaintext_refused(target, files, admin))
        report.seconds = time.monotonic() - started
        return report
    finally:
        files.close()
