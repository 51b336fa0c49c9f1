"""Post-deploy checks: prove with real credentials that the stack does what it says.

First, the database's certificate must verify (verify-full) against the
database CA: an expired or replaced one fails the checks saying so. For each
client: log in with AppRole, issue credentials (a lease within the
role's max_ttl), connect with verify-full, run the statements its grants allow
and see the forbidden ones refused, renew the lease (still within max_ttl).
While every client holds a lease: no client reads another's creds path or a
protected path (static credentials, the connection's config), nor renews or
revokes another client's lease. Then each client revokes its own lease, and
the revoked user is refused at login. Last: each static role's current
password logs in, the database's bootstrap admin password no longer does
(root rotation), and a plaintext connection is refused. During a migration
from static credentials (`components.migration`): each app still on a KV
password reads it with its own login and logs in with it over verify-full,
and each retired static password is refused. On PostgreSQL, every
dynamic user of the stack's roles (a client's, or one issued earlier and
still alive) must hold its group role and nothing else: grants widened by hand
fail the checks, naming the user, its role and what it holds. The report says
how old the root credential is (since its last rotation) and when Vault last
rotated each static role's password.

Each check is a sequence of hvac and psycopg calls that yields a `CheckResult`;
`run_checks` returns a report without secrets. The plan and the report are in `check_plan`; what is
wrong with a certificate that fails verify-full, in `tls_diagnosis`.
"""

import contextlib
import dataclasses
import datetime
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import hvac
import psycopg
import requests
from hvac import exceptions as vault_errors
from psycopg import errors
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from components.postgres_sql import (
    DATABASE_COUNTERS_QUERY,
    DYNAMIC_USER_HOLDINGS_QUERY,
    database_counters,
    dynamic_user_excess,
)
from components.servers.openbao_metrics import CHECK_NAME as METRICS_CHECK, metrics_report
from components.servers.openbao import node_state, raft_report, serving_address
from components.vault.check_plan import (CheckPlan, CheckResult, ClientCheck, KvLoginCheck, Report, RetiredLogin,
                                         Target)
from components.vault.tls_diagnosis import (certificate_summary, served_certificate, served_certificate_problem,
                                            served_https_certificate)


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


#: A connection that could not be made (its name not resolved, its address not answering) is tried again,
#: this often, after a growing pause: cluster DNS drops a query now and then, and nothing was sent yet.
CONNECT_RETRIES = 4


def connect(target: Target, files: CaFiles, user: str, password: str, sslmode: str = "verify-full"):
    for attempt in range(CONNECT_RETRIES + 1):
        try:
            return psycopg.connect(
                host=target.db_host, port=target.db_port, dbname=target.db_name, user=user, password=password,
                sslmode=sslmode, sslrootcert=str(files.db_ca), connect_timeout=10, autocommit=True,
            )
        except psycopg.OperationalError as error:
            if "could not translate host name" not in str(error) or attempt == CONNECT_RETRIES:
                raise
            time.sleep(0.5 * 2 ** attempt)


def vault_client(target: Target, files: CaFiles, token: str | None = None, address: str = "") -> hvac.Client:
    """Vault at target's address, or at one node's; a connection that could not be made is tried again."""
    session = requests.Session()
    session.verify = str(files.vault_ca)
    session.mount("https://", HTTPAdapter(max_retries=Retry(total=None, connect=CONNECT_RETRIES, read=0, redirect=0,
                                                            status=0, other=0, backoff_factor=0.5)))
    # Never hvac's fallback (VAULT_TOKEN, ~/.vault-token): an operator's token for another Vault.
    return hvac.Client(url=address or target.vault_addr, token=token or "", timeout=15, session=session,
                       namespace=target.vault_namespace or None)


def refused_login(target: Target, files: CaFiles, user: str, password: str) -> str:
    """Empty when the database refuses this login for its password, else what happened."""
    try:
        connect(target, files, user, password).close()
    except psycopg.OperationalError as error:
        return "" if "password authentication failed" in str(error) else f"refused, but not for the password: {error}"
    return "the login was accepted"


def raft_voters(vault: hvac.Client, expected: int) -> tuple[CheckResult, dict]:
    """That a cluster's `expected` nodes are all raft voters (`raft_report`), as a check, and its peers
    and active node, for the report."""
    problem, cluster = raft_report(vault, expected)
    return CheckResult(f"the {expected} OpenBao nodes are raft voters", not problem, problem), cluster


#: How long a node may take to serve (one that just started or joined) before the checks say it does not.
SETTLE_SECONDS = 30


def _settled_state(vault: hvac.Client) -> tuple[str, str]:
    """A node's state once it serves, or after SETTLE_SECONDS; and, when it does not answer, why."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while (state := node_state(vault)) not in ("active", "standby") and time.monotonic() < deadline:
        time.sleep(1)
    if state != "down":
        return state, ""
    try:
        vault.adapter.get("/v1/sys/health", raise_exception=False)
        return state, ""
    except Exception as error:  # noqa: BLE001 - what the node answered, for the report
        return state, f" ({type(error).__name__}: {str(error)[:200]})"


def _through_each_node(report: Report, target: Target, files: CaFiles, addresses: Sequence[str],
                       client: ClientCheck) -> None:
    """Through each node that is up (a standby forwards to the active node), the client issues, renews,
    connects and revokes; the nodes' states go into the report."""
    states = {a: _settled_state(vault_client(target, files, address=a)) for a in addresses}
    report.vault_cluster["nodes"] = [{"address": a, "state": s} for a, (s, _why) in states.items()]
    for address, (state, why) in states.items():
        if state not in ("active", "standby"):
            report.results.append(CheckResult(f"node {address} serves", False,
                                              f"it is {state}: it neither serves nor forwards{why}"))
            continue

        def through(node: str = address) -> str:
            vault = vault_client(target, files, address=node)
            vault.auth.approle.login(role_id=client.role_id, secret_id=client.secret_id,
                                     mount_point=client.approle_mount)
            secret = vault.read(client.creds_path)
            lease, creds = secret["lease_id"], secret["data"]
            try:
                renew(vault, lease, 60)
                with connect(target, files, creds["username"], creds["password"]) as conn:
                    conn.execute("SELECT 1")
            finally:
                revoke(vault, lease)
            return refused_login(target, files, creds["username"], creds["password"])

        report.check(f"{client.name} through node {address} ({state}): issue, renew, connect, revoke", through)


def renew(vault: hvac.Client, lease_id: str, increment: int) -> dict:
    """Renews by path (`sys/leases/renew/<lease id>`)."""
    return vault.adapter.put(f"/v1/sys/leases/renew/{lease_id}", json={"increment": increment})


def revoke(vault: hvac.Client, lease_id: str) -> None:
    """Revokes by path (`sys/leases/revoke/<lease id>`)."""
    vault.adapter.put(f"/v1/sys/leases/revoke/{lease_id}")


def refused(action: Callable[[], Any], what: str) -> str:
    """Empty when Vault refuses action with 403, else what happened."""
    try:
        action()
    except vault_errors.Forbidden:
        return ""
    return f"allowed: {what}"


@dataclass
class _Session:
    """A client logged in, with the lease it holds."""

    client: ClientCheck
    vault: hvac.Client | None = None
    lease: str = ""
    creds: dict = field(default_factory=dict)


def _lifecycle(report: Report, target: Target, files: CaFiles, session: _Session) -> bool:
    """Login, issue, allowed and forbidden statements, renewal; True when all passed."""
    client = session.client

    def login() -> str:
        session.vault = vault_client(target, files)
        session.vault.auth.approle.login(role_id=client.role_id, secret_id=client.secret_id,
                                         mount_point=client.approle_mount)
        return ""

    def issue() -> str:
        secret = session.vault.read(client.creds_path)
        session.lease, session.creds = secret["lease_id"], secret["data"]
        duration = secret["lease_duration"]
        return "" if 0 < duration <= client.max_ttl else f"lease of {duration}s, outside 1 to {client.max_ttl}s"

    def allowed() -> str:
        with connect(target, files, session.creds["username"], session.creds["password"]) as conn:
            if not conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]:
                return "the connection is not encrypted"
            for statement in client.allowed:
                with conn.transaction(force_rollback=True):
                    conn.execute(statement)
        return ""

    def forbidden() -> str:
        with connect(target, files, session.creds["username"], session.creds["password"]) as conn:
            for statement in client.forbidden:
                try:
                    with conn.transaction(force_rollback=True):
                        conn.execute(statement)
                except errors.InsufficientPrivilege:
                    continue
                return f"allowed: {statement}"
        return ""

    def renewal() -> str:
        # As the standard clients renew (the CLI's `lease renew`, the agent, hvac): the lease id in the body.
        # Asking for twice the role's max_ttl: Vault must cap it.
        duration = session.vault.sys.renew_lease(lease_id=session.lease, increment=2 * client.max_ttl)[
            "lease_duration"]
        return "" if 0 < duration <= client.max_ttl else f"renewed to {duration}s, outside 1 to {client.max_ttl}s"

    steps = (("AppRole login", login), ("issue credentials within max_ttl", issue),
             ("allowed statements run over verify-full", allowed),
             ("forbidden statements are refused", forbidden), ("renewal (lease id in the body) stays within max_ttl", renewal))
    return all(report.check(f"{client.name}: {name}", action) for name, action in steps)


def _isolation(report: Report, session: _Session, others: Sequence[_Session], protected: Sequence[str]) -> None:
    """The client reads no other creds path nor a protected path, and cannot touch another's lease."""
    vault, name = session.vault, session.client.name

    def paths() -> str:
        for path in [o.client.creds_path for o in others] + list(protected):
            problem = refused(lambda p=path: vault.read(p), f"read {path}")
            if problem:
                return problem
        return ""

    def leases() -> str:
        for other in others:
            if not other.lease:
                continue
            for what, action in (
                (f"revoke {other.client.name}'s lease", lambda o=other: revoke(vault, o.lease)),
                (f"revoke {other.client.name}'s lease by body",
                 lambda o=other: vault.sys.revoke_lease(lease_id=o.lease)),
                (f"renew {other.client.name}'s lease", lambda o=other: renew(vault, o.lease, 60)),
                (f"renew {other.client.name}'s lease by body",
                 lambda o=other: vault.sys.renew_lease(lease_id=o.lease)),
            ):
                problem = refused(action, what)
                if problem:
                    return problem
        return ""

    report.check(f"{name}: cannot read other clients' credentials or protected paths", paths)
    report.check(f"{name}: cannot renew or revoke other clients' leases", leases)


def _holdings(report: Report, target: Target, files: CaFiles, session: _Session, groups: Mapping[str, str]) -> None:
    """Every dynamic user of the stack's roles holds its group and nothing more (read with a client's
    own credentials: the catalogs are public)."""
    def action() -> str:
        with connect(target, files, session.creds["username"], session.creds["password"]) as conn:
            return "; ".join(dynamic_user_excess(conn.execute(DYNAMIC_USER_HOLDINGS_QUERY).fetchall(), groups))

    report.check("dynamic users hold nothing beyond their role's group", action)


def _database_counters(report: Report, target: Target, files: CaFiles, session: _Session) -> None:
    """PostgreSQL's counters into the report (`database`), read in a client's own session."""
    def action() -> str:
        with connect(target, files, session.creds["username"], session.creds["password"]) as conn:
            problem, report.database = database_counters(conn.execute(DATABASE_COUNTERS_QUERY).fetchone())
        return problem

    report.check("PostgreSQL's counters are read (sessions, dynamic users, commits, rollbacks, deadlocks)", action)


def _revocation(report: Report, target: Target, files: CaFiles, session: _Session) -> None:
    def action() -> str:
        # As hvac's sys.revoke_lease sends it: the lease id in the body.
        session.vault.sys.revoke_lease(lease_id=session.lease)
        session.lease = ""
        return refused_login(target, files, session.creds["username"], session.creds["password"])

    report.check(f"{session.client.name}: revoked (lease id in the body) user cannot log in", action)


def _static_roles(report: Report, target: Target, files: CaFiles, token: str, paths: Sequence[str]) -> None:
    """Each static role's current password logs in; when Vault last rotated it goes into the report."""
    for path in paths:
        def action(p=path) -> str:
            creds = vault_client(target, files, token).read(p)["data"]
            # The static-creds read says when (the static-roles read says the same; the in-cluster
            # checks' token may read the credentials only).
            report.rotations.setdefault("static_roles", {})[p.rsplit("/", 1)[1]] = {
                "last_vault_rotation": creds["last_vault_rotation"],
                "age_seconds": age_seconds(creds["last_vault_rotation"])}
            with connect(target, files, creds["username"], creds["password"]) as conn:
                conn.execute("SELECT 1")
            return ""

        report.check(f"static role {path.rsplit('/', 1)[1]}: its current password logs in", action)


def age_seconds(timestamp: str, now: datetime.datetime | None = None) -> int:
    """Whole seconds since an RFC 3339 time as Vault writes it (nanoseconds, a zone or Z)."""
    whole, _, rest = timestamp.partition(".")
    zone = rest.lstrip("0123456789") if rest else whole[19:]
    when = datetime.datetime.fromisoformat(whole[:19] + (zone.replace("Z", "+00:00") or "+00:00"))
    return int(((now or datetime.datetime.now(datetime.timezone.utc)) - when).total_seconds())


def _kv_logins(report: Report, target: Target, files: CaFiles, logins: Sequence[KvLoginCheck]) -> None:
    for login in logins:
        def action(k=login) -> str:
            vault = vault_client(target, files)
            vault.auth.approle.login(role_id=k.role_id, secret_id=k.secret_id, mount_point=k.approle_mount)
            data = vault.read(k.kv_path)["data"]["data"]
            with connect(target, files, data["username"], data["password"]) as conn:
                for statement in k.allowed:
                    with conn.transaction(force_rollback=True):
                        conn.execute(statement)
            return ""

        report.check(f"{login.name}: reads its static password from KV and logs in over verify-full", action)


def _retired_logins(report: Report, target: Target, files: CaFiles, logins: Sequence[RetiredLogin]) -> None:
    for login in logins:
        report.check(f"{login.username}: its retired static password no longer logs in",
                     lambda r=login: refused_login(target, files, r.username, r.password))


def check_bootstrap_password(target: Target, files: CaFiles, admin: str, bootstrap_password: str) -> CheckResult:
    problem = refused_login(target, files, admin, bootstrap_password)
    return CheckResult("the bootstrap admin password is rejected (root rotated)", not problem, problem)


def check_database_certificate(target: Target, files: CaFiles, admin: str) -> CheckResult:
    """The database's certificate verifies (verify-full: chain, expiry, host name) against the database
    CA, proved by a TLS handshake that reaches authentication (a wrong password, refused)."""
    name = "the database's certificate verifies (verify-full)"
    where = f"the database at {target.db_host}:{target.db_port}"
    try:
        connect(target, files, admin, "not-a-password").close()
    except psycopg.OperationalError as error:
        text = str(error)
        if "password authentication failed" in text:
            return CheckResult(name, True)
        if "certificate" in text or "SSL" in text:
            why = served_certificate_problem(target.db_host, target.db_port, target.db_ca_pem)
            because = f": {why}" if why else ""
            return CheckResult(name, False, f"{where} presents a certificate that fails verify-full against the "
                                            f"database CA{because} (libpq: {text.strip()})")
        return CheckResult(name, False, f"{where} cannot be reached: {text.strip()}")
    return CheckResult(name, False, "a login with a wrong password was accepted")


def served_certificates(target: Target) -> dict:
    """The certificates the database and Vault present now (serial, end), read on the wire; one that
    cannot be read says why instead (the checks that need it fail on their own)."""
    readers = {"database": lambda: served_certificate(target.db_host, target.db_port),
               "vault": lambda: served_https_certificate(target.vault_addr)}
    served = {}
    for server, read in readers.items():
        try:
            served[server] = certificate_summary(read())
        except Exception as error:  # noqa: BLE001 - the report says it, the other checks decide
            served[server] = {"error": f"{type(error).__name__}: {error}"}
    return served


def check_plaintext_refused(target: Target, files: CaFiles, admin: str) -> CheckResult:
    name = "a plaintext connection is refused"
    try:
        connect(target, files, admin, "not-a-password", sslmode="disable").close()
    except psycopg.OperationalError as error:
        refused_ = "no encryption" in str(error)
        return CheckResult(name, refused_, "" if refused_ else str(error))
    return CheckResult(name, False, "a plaintext connection was accepted")


def served_ca_chain(target: Target, mount: str) -> str:
    """The CA chain Vault's PKI mount serves (unauthenticated, as any client would read it)."""
    files = CaFiles(target)
    try:
        return vault_client(target, files).secrets.pki.read_ca_certificate_chain(mount_point=mount)
    finally:
        files.close()


def run_checks(plan: CheckPlan) -> Report:
    """Every check, in order; the report holds names and problems, never a secret."""
    started = time.monotonic()
    report = Report()
    target = plan.target
    if plan.database_pki_mount:
        served = {}

        def fetch() -> str:
            served["chain"] = served_ca_chain(plan.target, plan.database_pki_mount)
            return "" if "BEGIN CERTIFICATE" in served["chain"] else "no certificate in what it serves"

        if not report.check(f"the CA chain Vault's PKI serves ({plan.database_pki_mount}) is read", fetch):
            return report
        target = dataclasses.replace(target, db_ca_pem=served["chain"])
    files = CaFiles(target)
    if plan.node_addresses:
        # A cluster's clients reach it through a node that serves.
        target = dataclasses.replace(target, vault_addr=serving_address(plan.node_addresses, str(files.vault_ca)))
    sessions = [_Session(c) for c in plan.clients]
    try:
        # A certificate that fails (expired, replaced) would fail every later check less clearly.
        # A login refused for its password proves the handshake; any name does (PostgreSQL does not say
        # whether a role exists).
        probe = plan.admin or "dbcreds_probe"
        report.results.append(check_database_certificate(target, files, probe))
        if not report.passed:
            return report
        report.certificates = served_certificates(target)
        ready = [s for s in sessions if _lifecycle(report, target, files, s)]
        for session in ready:
            _isolation(report, session, [o for o in sessions if o is not session], plan.protected_paths)
        if plan.group_roles and ready:
            # PostgreSQL's catalogs (the plan gives group roles for PostgreSQL only).
            _holdings(report, target, files, ready[0], plan.group_roles)
            _database_counters(report, target, files, ready[0])
        for session in ready:
            _revocation(report, target, files, session)
        _static_roles(report, target, files, plan.vault_token, plan.static_creds_paths)
        _kv_logins(report, target, files, plan.kv_logins)
        _retired_logins(report, target, files, plan.retired_logins)
        if plan.raft_voters:
            result, cluster = raft_voters(vault_client(target, files, plan.vault_token), plan.raft_voters)
            report.results.append(result)
            report.vault_cluster.update(cluster)
        if plan.metrics:
            problem, report.metrics = metrics_report(vault_client(target, files, plan.vault_token),
                                                     vault_client(target, files))
            report.results.append(CheckResult(METRICS_CHECK, not problem, problem))
        if len(plan.node_addresses) > 1 and ready:
            _through_each_node(report, target, files, plan.node_addresses, ready[0].client)
        if plan.admin:
            report.results.append(check_bootstrap_password(target, files, plan.admin, plan.bootstrap_password))
        if plan.root_rotated_at:
            report.rotations["root_age_seconds"] = int(time.time()) - plan.root_rotated_at
        report.results.append(check_plaintext_refused(target, files, probe))
        report.seconds = time.monotonic() - started
        return report
    finally:
        # Never strand a credential: whatever failed, every lease taken is given back.
        for session in sessions:
            if session.lease:
                with contextlib.suppress(Exception):
                    revoke(session.vault, session.lease)
        files.close()
