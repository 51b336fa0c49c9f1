"""The post-deploy checks' plan and report: what they prove and where (`CheckPlan`, as plain values,
so it crosses Pulumi's wire and the in-cluster Job's Secret as JSON), and what they found (`Report`,
which never holds a secret). `components.vault.checks` runs a plan; `post_deploy_checks` takes its
fields as Pulumi inputs.
"""

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence


@dataclass(frozen=True)
class Target:
    """Where Vault and the database are, and the CAs that verify them."""

    vault_addr: str
    vault_ca_pem: str
    db_host: str
    db_port: int
    db_name: str
    db_ca_pem: str
    #: The Vault namespace the clients log in and issue in (empty: the root one, no header sent).
    vault_namespace: str = ""


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
    #: The role's max_ttl (seconds): no lease of it may be longer, issued or renewed.
    max_ttl: int


@dataclass(frozen=True)
class KvLoginCheck:
    """An app that still reads its database password from KV v2: its AppRole login, the secret's read
    path (`<mount>/data/<name>`, holding `username` and `password`), what it may run."""

    name: str
    approle_mount: str
    role_id: str
    secret_id: str
    kv_path: str
    allowed: Sequence[str]


@dataclass(frozen=True)
class RetiredLogin:
    """A static password that must no longer log in (Vault rotated it, or its user was dropped)."""

    username: str
    password: str


@dataclass(frozen=True)
class CheckPlan:
    """Everything the checks need; secrets (secret_ids, token, password) never reach the report."""

    target: Target
    clients: Sequence[ClientCheck]
    #: The connection's admin and its bootstrap password (root rotation). Empty: no connection to check.
    admin: str = ""
    bootstrap_password: str = ""
    #: Paths no client may read: static credentials, the connection's config.
    protected_paths: Sequence[str] = ()
    #: static-creds paths, read with vault_token: each password must log in.
    static_creds_paths: Sequence[str] = ()
    vault_token: str = ""
    #: When Vault's PKI issues the database's certificate: its mount. The checks then verify the
    #: database against the CA chain that mount serves, not the one in `target`.
    database_pki_mount: str = ""
    #: PostgreSQL: each dynamic role's group role. Every dynamic user of these roles must hold its
    #: group and nothing else (grants widened by hand fail the checks). Empty: not checked.
    group_roles: Mapping[str, str] = field(default_factory=dict)
    kv_logins: Sequence[KvLoginCheck] = ()
    retired_logins: Sequence[RetiredLogin] = ()
    #: Every node's address, when Vault is a cluster: issuance, renewal and revocation are proved
    #: through each node that is up (a standby forwards).
    node_addresses: Sequence[str] = ()
    #: A cluster's size, when vault_token may read its raft configuration: every node must be a voter,
    #: and the peers are reported (0: not checked here).
    raft_voters: int = 0
    #: When the connection's root credential was last rotated (Unix seconds): its age goes into the
    #: report (0: not reported).
    root_rotated_at: int = 0
    #: Whether vault_token reads the metrics of a Vault the stack runs (`components.vault.metrics`):
    #: they must be served, only to a token, and their alert signals go into the report.
    metrics: bool = False

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "CheckPlan":
        """From plain values (as they cross Pulumi's wire: numbers as floats)."""
        target = Target(**{**raw["target"], "db_port": int(raw["target"]["db_port"])})
        clients = [ClientCheck(**{**c, "max_ttl": int(c["max_ttl"])}) for c in raw["clients"]]
        return cls(target=target, clients=clients, admin=raw.get("admin") or "",
                   bootstrap_password=raw.get("bootstrap_password") or "",
                   protected_paths=tuple(raw.get("protected_paths") or ()),
                   static_creds_paths=tuple(raw.get("static_creds_paths") or ()),
                   vault_token=raw.get("vault_token") or "",
                   database_pki_mount=raw.get("database_pki_mount") or "",
                   group_roles=dict(raw.get("group_roles") or {}),
                   kv_logins=[KvLoginCheck(**k) for k in raw.get("kv_logins") or ()],
                   retired_logins=[RetiredLogin(**r) for r in raw.get("retired_logins") or ()],
                   node_addresses=tuple(raw.get("node_addresses") or ()),
                   raft_voters=int(raw.get("raft_voters") or 0),
                   root_rotated_at=int(raw.get("root_rotated_at") or 0),
                   metrics=bool(raw.get("metrics")))


@dataclass
class CheckResult:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class Report:
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0
    #: A cluster's nodes (address and state), its raft peers and its active node.
    vault_cluster: dict = field(default_factory=dict)
    #: How old the root credential is, and when each static role was last rotated.
    rotations: dict = field(default_factory=dict)
    #: The metrics' alert signals (`components.vault.metrics.signals`), when read.
    metrics: dict = field(default_factory=dict)
    #: What each server presents now, by server (`database`, `vault`): serial, subject, issuer, not_after.
    certificates: dict = field(default_factory=dict)
    #: PostgreSQL's counters (`components.postgres_sql.DATABASE_COUNTERS`), when read.
    database: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    def as_dict(self) -> dict:
        report = {"passed": self.passed, "seconds": round(self.seconds, 1),
                  "checks": [asdict(r) for r in self.results]}
        if self.rotations:
            report["rotations"] = self.rotations
        if self.metrics:
            report["metrics"] = self.metrics
        if self.certificates:
            report["certificates"] = self.certificates
        if self.database:
            report["database"] = self.database
        return {**report, "vault_cluster": self.vault_cluster} if self.vault_cluster else report

    def failures(self) -> str:
        return "; ".join(f"{r.name}: {r.detail}" for r in self.results if not r.passed)

    def check(self, name: str, action: Callable[[], str]) -> bool:
        """Runs action (it returns a problem, empty when none) and records the result."""
        try:
            problem = action()
        except Exception as error:  # noqa: BLE001 - a failed check is reported, not raised
            problem = f"{type(error).__name__}: {error}"
        self.results.append(CheckResult(name, not problem, problem))
        return not problem
