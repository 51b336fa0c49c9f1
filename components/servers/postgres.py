"""A PostgreSQL server as a local process on 127.0.0.1: data folder, TLS, start and stop.

The server binaries are Debian's PostgreSQL 15 (`make bootstrap` installs them
when missing). PostgreSQL refuses to run as root, so as root the server runs as
a dedicated system user. Connections over TCP must use TLS and SCRAM, and the
superuser cannot log in over TCP at all: it has no password, and only the OS
account that runs the stack reaches it, through the Unix socket in the data
folder (peer authentication mapped in pg_ident.conf).
"""

import hashlib
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import psycopg

PG_BIN = Path(os.environ.get("DBCREDS_PG_BIN", "/usr/lib/postgresql/15/bin"))
#: Where the data goes when the service account cannot reach the folder asked for (a checkout in a
#: private home folder, say): the folder asked for becomes a link to it.
SYSTEM_DATA_ROOT = Path(os.environ.get("DBCREDS_PG_DATA_ROOT", "/var/lib/pulumi-dbcreds"))
SERVICE_USER = "dbcreds-pg"
SUPERUSER = "postgres"


class LocalPostgresError(RuntimeError):
    pass


def render_postgresql_conf(port: int, host: str = "127.0.0.1", files_dir: str = ".") -> str:
    """Settings appended to initdb's postgresql.conf. files_dir holds the socket and the TLS files
    (relative: to the data folder)."""
    return "\n".join([
        "# Written by dbcreds: TLS only over TCP, loopback only.",
        f"listen_addresses = '{host}'",
        f"port = {int(port)}",
        f"unix_socket_directories = '{files_dir}'",
        "unix_socket_permissions = 0700",
        "ssl = on",
        f"ssl_cert_file = '{'' if files_dir == '.' else files_dir + '/'}server.crt'",
        f"ssl_key_file = '{'' if files_dir == '.' else files_dir + '/'}server.key'",
        "ssl_min_protocol_version = 'TLSv1.2'",
        "password_encryption = 'scram-sha-256'",
        "max_connections = 200",
        "",
    ])


#: Where clients connect from on this machine.
LOOPBACK_NETWORKS = ("127.0.0.1/32", "::1/128")


def render_pg_hba(networks: tuple[str, ...] = LOOPBACK_NETWORKS) -> str:
    """The superuser over the socket only; everyone else TLS with SCRAM over TCP from networks (a pod:
    any); plaintext TCP refused."""
    return "\n".join([
        "# Written by dbcreds.",
        "# TYPE   DATABASE USER     ADDRESS      METHOD",
        "local    all      postgres              peer map=dbcreds",
        "hostssl  all      postgres 0.0.0.0/0    reject",
        "hostssl  all      postgres ::/0         reject",
        *(f"hostssl  all      all      {network} scram-sha-256" for network in networks),
        "",
    ])


def render_pg_ident(os_user: str) -> str:
    """Maps the OS account that runs the stack to the superuser."""
    return f"# Written by dbcreds.\n# MAP   OS USER  DATABASE USER\ndbcreds {os_user} {SUPERUSER}\n"


def _service_account() -> Optional[pwd.struct_passwd]:
    """The account the server runs as: a dedicated system user when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", SERVICE_USER],
            check=True, capture_output=True,
        )
        return pwd.getpwnam(SERVICE_USER)


def _run_as_service(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    account = _service_account()
    if account is not None:
        if shutil.which("runuser") is None:
            raise LocalPostgresError(f"runuser (util-linux) is needed to run PostgreSQL as {SERVICE_USER}")
        args = ["runuser", "-u", account.pw_name, "--", *args]
    # From /, which any account may enter; the caller's folder may be private.
    return subprocess.run(args, capture_output=True, text=True, cwd="/", **kwargs)


def _reachable(folder: Path) -> bool:
    """Whether the account the server runs as can enter folder (and so every folder above it)."""
    if _service_account() is None:
        return True
    return _run_as_service(["test", "-x", str(folder)]).returncode == 0


def system_data_dir(data_dir: Path) -> Path:
    """The folder under SYSTEM_DATA_ROOT that stands for data_dir, named after its path."""
    return SYSTEM_DATA_ROOT / f"postgres-{hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]}"


def _chown(path: Path) -> None:
    account = _service_account()
    if account is not None:
        os.chown(path, account.pw_uid, account.pw_gid)


@dataclass(frozen=True)
class LocalPostgres:
    """One server: its data folder and port."""

    data_dir: Path
    port: int

    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    @property
    def pgdata(self) -> Path:
        """The data folder itself (data_dir may be a link to it): what the server is given."""
        return self.data_dir.resolve()

    def _make_data_dir(self) -> None:
        """The data folder, where the service account can reach it: data_dir itself, or a folder
        under SYSTEM_DATA_ROOT that data_dir links to."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if _reachable(self.data_dir.parent):
            self.data_dir.mkdir(exist_ok=True, mode=0o700)
        else:
            real = system_data_dir(self.data_dir)
            if real.exists() and any(real.iterdir()):
                raise LocalPostgresError(
                    f"{real} (where the data of {self.data_dir} goes: {SERVICE_USER} cannot enter "
                    f"{self.data_dir.parent}) is not empty: it may hold another server's data; remove it")
            real.parent.mkdir(parents=True, exist_ok=True)
            real.parent.chmod(0o755)
            real.mkdir(exist_ok=True, mode=0o700)
            if not self.data_dir.is_symlink():
                self.data_dir.symlink_to(real, target_is_directory=True)
        _chown(self.pgdata)

    def initdb(self, cert_pem: str, key_pem: str) -> None:
        """Creates the data folder: TLS, SCRAM, and a superuser with no password."""
        if not (PG_BIN / "initdb").exists():
            raise LocalPostgresError(f"no PostgreSQL server binaries in {PG_BIN} (run make bootstrap)")
        if self.initialised:
            raise LocalPostgresError(f"{self.data_dir} already holds a database cluster")
        self._make_data_dir()
        result = _run_as_service([
            str(PG_BIN / "initdb"), "--pgdata", str(self.pgdata), "--username", SUPERUSER,
            "--auth-host", "scram-sha-256", "--auth-local", "peer", "--encoding", "UTF8", "--locale", "C.UTF-8",
        ])
        if result.returncode != 0:
            raise LocalPostgresError(f"initdb failed: {result.stderr.strip()}")
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write(render_postgresql_conf(self.port))
        self.write_file("pg_hba.conf", render_pg_hba())
        self.write_file("pg_ident.conf", render_pg_ident(pwd.getpwuid(os.geteuid()).pw_name))
        self.install_tls(cert_pem, key_pem)

    def superuser(self, dbname: str = "postgres") -> psycopg.Connection:
        """A connection as the superuser (autocommit), over the Unix socket."""
        return psycopg.connect(self.superuser_dsn(dbname), autocommit=True, connect_timeout=10)

    def superuser_dsn(self, dbname: str = "postgres") -> str:
        """The superuser's connection string: the Unix socket in the data folder, peer-authenticated."""
        return f"host={self.data_dir} port={self.port} user={SUPERUSER} dbname={dbname}"

    def write_file(self, name: str, text: str, mode: int = 0o600) -> None:
        path = self.data_dir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        _chown(path)

    def install_tls(self, cert_pem: str, key_pem: str) -> None:
        """Writes the server's certificate and key (a running server needs `reload`)."""
        self.write_file("server.crt", cert_pem, 0o644)
        self.write_file("server.key", key_pem, 0o600)

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess:
        return _run_as_service([str(PG_BIN / "pg_ctl"), "--pgdata", str(self.pgdata), *args])

    @property
    def running(self) -> bool:
        return self._postmaster_state() not in (None, "Z")

    def _postmaster_state(self) -> str | None:
        """The postmaster's process state letter (Z: dead, not yet reaped), or None if there is none."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, ValueError, IndexError):
            return None
        return stat.rsplit(")", 1)[1].split()[0]

    def start(self) -> None:
        if self.running:
            return
        # A killed postmaster its parent has not reaped still holds the lock file.
        deadline = time.monotonic() + 30
        while self._postmaster_state() == "Z" and time.monotonic() < deadline:
            time.sleep(0.2)
        result = self._pg_ctl("start", "--wait", "--timeout", "60", "--log", str(self.pgdata / "server.log"))
        if result.returncode != 0:
            log = (self.data_dir / "server.log").read_text()[-2000:] if (self.data_dir / "server.log").exists() else ""
            raise LocalPostgresError(f"PostgreSQL did not start on port {self.port}: {result.stderr.strip()}\n{log}")

    def reload(self) -> None:
        result = self._pg_ctl("reload")
        if result.returncode != 0:
            raise LocalPostgresError(f"reload failed: {result.stderr.strip()}")

    def stop(self) -> None:
        if self.running:
            result = self._pg_ctl("stop", "--wait", "--mode", "fast")
            if result.returncode != 0:
                raise LocalPostgresError(f"stop failed: {result.stderr.strip()}")


def superuser_connection(data_dir: str | Path, port: int | float, dbname: str) -> psycopg.Connection:
    """The superuser on dbname of the local server at data_dir and port (as they cross Pulumi's wire:
    the port may be a float): the one way the dynamic providers open it."""
    return LocalPostgres(Path(data_dir), int(port)).superuser(dbname)
