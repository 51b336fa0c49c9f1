"""Credential issuance through the engine `make up` configured, beside a direct SQL loop on the same
database; a burst right after Vault restarts.

    make up && .venv/bin/python benchmarks/issuance.py [--stack dev] [--total 1000]
    make up STACK=docker && .venv/bin/python benchmarks/issuance.py --stack docker

Reads the stack's outputs and config (nothing is configured here), then prints:
- issuance and revocation through Vault as the stack's `app` client (AppRole
  login per worker; each credential read from its creds path, then its lease
  revoked) at 1 and 20 concurrent clients: rate, p50/p95/p99 issuance latency,
  errors;
- a direct loop running the same role's creation and revocation SQL over one
  persistent connection per worker, as an admin like Vault's, serialised by an
  advisory lock as Vault's plugin serialises them; Vault's rate as a ratio of it;
- the same loop with the minimal statements (`minimal_statements`): the
  stack's SQL's rate as a ratio of it is what its safety costs;
- a burst of 20 concurrent issuances right after Vault is stopped and `pulumi
  up` starts and unseals it again.
The six kinds of run take turns, `--rounds` times, so that a drift of the
machine's speed falls on each alike; each is timed from the moment all its
workers have logged in or connected. It ends with the dynamic users left in the
database (0 expected), and one JSON line of every figure (ratios, rates, and the CPU seconds OpenBao,
PostgreSQL and this client spent in each run, from /proc/<pid>/stat).
"""

import argparse
import base64
import concurrent.futures
import dataclasses
import datetime
import hashlib
import hmac
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import hvac
from psycopg import sql
from pulumi import automation as auto

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.vault.checks import revoke  # noqa: E402
from components.sql_dialects import dialect_named  # noqa: E402
from stacks import config as stack_settings  # noqa: E402
from components.postgres_sql import as_text  # noqa: E402
from stacks import docker_target, kubernetes_target, local_target  # noqa: E402
from toolchain.env import ROOT, pulumi_env  # noqa: E402
from toolchain.stack_file import salted  # noqa: E402

LOCK = 0x76617574  # one advisory lock for the direct loop, as the plugin takes one
CLIENT = "app"


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def summary(name: str, seconds: float, latencies: list[float], errors: int) -> dict:
    ms = [x * 1000 for x in latencies]
    row = {"run": name, "n": len(latencies), "errors": errors, "rate_per_s": len(latencies) / seconds,
           "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "p99_ms": percentile(ms, 99)}
    print(f"{name:34} n={row['n']:5} errors={errors:3} rate={row['rate_per_s']:7.1f}/s "
          f"p50={row['p50_ms']:6.1f}ms p95={row['p95_ms']:6.1f}ms p99={row['p99_ms']:6.1f}ms", flush=True)
    return row


TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int, with_children: bool = False) -> float:
    """CPU (user + system) of a process; with_children: also its live children and those it reaped
    (PostgreSQL's backends are the postmaster's children)."""
    fields = _stat(pid)
    total = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if with_children else 0)
    if with_children:
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                child = _stat(int(proc.name))
            except (OSError, IndexError):
                continue
            if child[1] == str(pid):
                total += int(child[11]) + int(child[12])
    return total / TICKS


class CpuMeter:
    """CPU seconds OpenBao, PostgreSQL and this client spend while a run lasts."""

    def __init__(self, stack: "Stack"):
        if stack.config.target.kind == "docker":
            # The containers' processes, as this host sees them.
            self.vault_pid = docker_target.container_pid(stack.config, stack.outputs["vault_container"])
            self.postmaster = docker_target.container_pid(stack.config, stack.outputs["db_container"])
            return
        self.vault_pid = local_target.vault_server(stack.config).pid()
        database = local_target.database_server(stack.config)
        self.postmaster = int((database.pgdata / "postmaster.pid").read_text().split()[0])

    def sample(self) -> dict:
        client = os.times()
        return {"openbao": cpu_seconds(self.vault_pid), "postgres": cpu_seconds(self.postmaster, True),
                "client": client.user + client.system}

    def measure(self, run, *args) -> tuple["Timed", dict]:
        """run(*args), and the CPU seconds each process spent while it ran."""
        before = self.sample()
        timed = run(*args)
        time.sleep(0.5)  # closed connections' backends exit and are reaped into the postmaster's count
        after = self.sample()
        return timed, {k: after[k] - before[k] for k in before}


@dataclasses.dataclass
class Timed:
    """One run: its wall time, each issuance's latency, its errors."""

    seconds: float
    latencies: list[float]
    errors: int


class Tally:
    """The runs of one kind, added up over the rounds."""

    def __init__(self, name: str):
        self.name, self.seconds, self.latencies, self.errors = name, 0.0, [], 0
        self.cpu_s: dict[str, float] = {}
        self.rates: list[float] = []

    def add(self, timed: Timed, cpu_s: dict) -> None:
        self.seconds += timed.seconds
        self.latencies += timed.latencies
        self.errors += timed.errors
        self.rates.append(len(timed.latencies) / timed.seconds)
        for k, v in cpu_s.items():
            self.cpu_s[k] = self.cpu_s.get(k, 0.0) + v

    def row(self) -> dict:
        row = summary(self.name, self.seconds, self.latencies, self.errors)
        row["round_rates_per_s"] = [round(r, 1) for r in self.rates]
        row["cpu_s"] = {k: round(v, 2) for k, v in self.cpu_s.items()}
        row["cpu_ms_per_credential"] = {k: round(1000 * v / row["n"], 2) for k, v in self.cpu_s.items()}
        print(f"{'':34} cpu ms per credential: " + ", ".join(
            f"{k} {v:.2f}" for k, v in row["cpu_ms_per_credential"].items()), flush=True)
        return row


class Stack:
    """The stack's outputs and config, and Vault as its `app` client."""

    def __init__(self, name: str):
        self.name = name
        with salted(name):
            self.stack = auto.select_stack(
                stack_name=name, work_dir=str(ROOT),
                opts=auto.LocalWorkspaceOptions(env_vars=pulumi_env(), pulumi_command=auto.PulumiCommand(
                    root=str(ROOT / ".tools"), skip_version_check=True)))
            self.outputs = {k: v.value for k, v in self.stack.outputs().items()}
            self.config = stack_settings.of_stack(self.stack, ROOT)
        if "clients" not in self.outputs:
            raise SystemExit(f"stack {name} has no clients: run make up STACK={name} first")
        self._ca = tempfile.NamedTemporaryFile("w", suffix=".pem")
        self._ca.write(self.outputs["vault_ca_pem"])
        self._ca.flush()

    def client(self) -> hvac.Client:
        access = self.outputs["clients"][CLIENT]
        vault = hvac.Client(url=self.outputs["vault_addr"], verify=self._ca.name, timeout=60)
        vault.auth.approle.login(role_id=access["role_id"], secret_id=access["secret_id"],
                                 mount_point=access["approle_mount"])
        return vault

    def database_address(self) -> dict:
        """psycopg's host and port arguments for the database."""
        return {"host": self.outputs["db_host"], "port": self.outputs["db_port"]}

    def up(self) -> None:
        with salted(self.name):
            self.stack.up(on_output=lambda _: None)


def in_parallel(worker, total: int, workers: int) -> tuple[float, list]:
    """(seconds, results) of `workers` threads running worker(count, ready) over `total` between them,
    timed from the moment every one has called ready() (its login or connection made)."""
    shares = [total // workers + (1 if i < total % workers else 0) for i in range(workers)]
    barrier = threading.Barrier(workers + 1, timeout=120)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(worker, share, barrier.wait) for share in shares]
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            for future in futures:
                future.result()  # the worker's own error
            raise
        start = time.perf_counter()
        results = [future.result() for future in futures]
    return time.perf_counter() - start, results


def through_vault(stack: Stack, total: int, workers: int) -> Timed:
    """Each worker, logged in as the client, issues credentials (timed) and revokes the lease."""
    creds_path = stack.outputs["clients"][CLIENT]["creds_path"]

    def worker(count: int, ready) -> tuple[list[float], int]:
        vault, times, errors = stack.client(), [], 0
        ready()
        for _ in range(count):
            try:
                start = time.perf_counter()
                secret = vault.read(creds_path)
                times.append(time.perf_counter() - start)
                revoke(vault, secret["lease_id"])
            except Exception:  # noqa: BLE001 - counted
                errors += 1
        return times, errors

    seconds, results = in_parallel(worker, total, workers)
    return Timed(seconds, [t for times, _ in results for t in times], sum(e for _, e in results))


def as_superuser(stack: Stack, statements: list[sql.Composable]) -> None:
    """Statements as the database's superuser, on any target that runs it."""
    script = "".join(as_text(s) + ";\n" for s in statements)
    if stack.config.target.kind == "docker":
        docker_target.superuser_sql(stack.config, stack.outputs["db_container"], script)
        return
    if stack.config.target.kind == "kubernetes":
        kubernetes_target.superuser_sql(stack.config, stack.outputs["db_pod"], script)
        return
    with local_target.superuser(stack.config) as conn:
        for statement in statements:
            conn.execute(statement)


def direct_admin(stack: Stack) -> str:
    """A second admin like the one Vault uses (whose password Vault rotated): CREATEROLE, no superuser."""
    password = secrets.token_urlsafe(24)
    as_superuser(stack, [
        sql.SQL("DROP ROLE IF EXISTS bench_admin"),
        sql.SQL("CREATE ROLE bench_admin LOGIN CREATEROLE PASSWORD {}").format(sql.Literal(password)),
        sql.SQL("GRANT pg_signal_backend TO bench_admin"),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO bench_admin").format(sql.Identifier(stack.config.database.name)),
    ])
    return password


def drop_direct_admin(stack: Stack) -> None:
    as_superuser(stack, [
        sql.SQL("REVOKE CONNECT ON DATABASE {} FROM bench_admin").format(sql.Identifier(stack.config.database.name)),
        sql.SQL("DROP ROLE bench_admin"),
    ])


def dynamic_users(stack: Stack) -> list[str]:
    if stack.config.target.kind == "docker":
        return docker_target.dynamic_users(stack.config, stack.outputs["db_container"])
    if stack.config.target.kind == "kubernetes":
        return kubernetes_target.dynamic_users(stack.config, stack.outputs["db_pod"])
    return local_target.dynamic_users(stack.config)


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802, RFC 7677), as Vault's
    plugin computes it with `password_authentication = scram-sha-256`."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def minimal_statements(group: str) -> tuple[list[str], list[str]]:
    """The least a credential needs: a login role in the group, and dropping it (no expiry, no
    connection limit, no ending of sessions, no cleanup of what it owns)."""
    return ([f'CREATE ROLE "{{{{name}}}}" LOGIN PASSWORD \'{{{{password}}}}\' IN ROLE "{group}"'],
            ['DROP ROLE "{{name}}"'])


def direct_sql(stack: Stack, password: str, total: int, workers: int, minimal: bool = False) -> Timed:
    """The role's creation and revocation SQL (or the minimal statements) as an admin, one connection
    per worker, under one lock."""
    role = next(c.role for c in stack.config.clients if c.name == CLIENT)
    group, dialect = stack.outputs["db_group_roles"][role], dialect_named(stack.config.database.engine)
    spec = next(r for r in stack.config.database.roles if r.name == role)
    create, drop = dialect.creation_statements(spec, group), dialect.revocation_statements(group)
    if minimal:
        create, drop = minimal_statements(group)
    # What Vault's plugin puts in {{password}}: a SCRAM verifier it computes, or the plaintext.
    scram = dialect.password_authentication == "scram-sha-256"

    def new_password() -> str:
        return scram_verifier(secrets.token_urlsafe(20)) if scram else secrets.token_urlsafe(20)

    ca = stack._ca.name.replace(".pem", "-db.pem")
    Path(ca).write_text(stack.outputs["db_ca_pem"])

    def worker(count: int, ready) -> list[float]:
        import psycopg

        times = []
        with psycopg.connect(**stack.database_address(), dbname=stack.outputs["db_name"], user="bench_admin",
                             password=password, sslmode="verify-full", sslrootcert=ca) as conn:
            ready()
            for _ in range(count):
                name = f"v_direct_{secrets.token_hex(10)}_{int(time.time())}"
                expiry = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).isoformat()
                start = time.perf_counter()
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
                    for statement in create:
                        conn.execute(statement.replace("{{name}}", name).replace(
                            "{{password}}", new_password()).replace("{{expiration}}", expiry))
                times.append(time.perf_counter() - start)
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
                    for statement in drop:
                        conn.execute(statement.replace("{{name}}", name))
        return times

    try:
        seconds, results = in_parallel(worker, total, workers)
    finally:
        Path(ca).unlink(missing_ok=True)
    return Timed(seconds, [t for times in results for t in times], 0)


def burst_after_restart(stack: Stack, size: int = 20) -> int:
    """Vault stopped, then `pulumi up` starts and unseals it; `size` concurrent issuances at once."""
    if stack.config.target.kind == "docker":
        docker_target.engine(stack.config).docker("stop", stack.outputs["vault_container"])
    else:
        local_target.vault_server(stack.config).stop()
    started = time.perf_counter()
    stack.up()
    print(f"{'up after Vault was stopped':34} {time.perf_counter() - started:6.1f} s", flush=True)
    vault, errors = stack.client(), 0
    creds_path = stack.outputs["clients"][CLIENT]["creds_path"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=size) as pool:
        for future in concurrent.futures.as_completed([pool.submit(vault.read, creds_path) for _ in range(size)]):
            try:
                revoke(vault, future.result()["lease_id"])
            except Exception as error:  # noqa: BLE001 - counted and shown
                errors += 1
                print(f"  burst error: {error}", flush=True)
    print(f"{'burst after restart and unseal':34} n={size:5} errors={errors:3}", flush=True)
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="dev", help="a stack `make up` brought up (local or docker target)")
    parser.add_argument("--total", type=int, default=1000, help="credentials per concurrent run (a fifth per "
                                                                   "single-client run), over all rounds")
    parser.add_argument("--rounds", type=int, default=4, help="turns each kind of run takes")
    args = parser.parse_args()
    stack = Stack(args.stack)
    if stack.config.database.engine != "postgresql" or stack.config.target.kind not in ("local", "docker"):
        raise SystemExit("the direct SQL baseline needs PostgreSQL on the local or docker target")
    password = direct_admin(stack)
    meter = CpuMeter(stack)
    # The three kinds take turns, round after round, so that a drift of this machine's speed
    # (other load, the catalog growing and being vacuumed) falls on each of them alike.
    kinds = {
        ("vault", 1): lambda n: through_vault(stack, n, 1),
        ("direct SQL", 1): lambda n: direct_sql(stack, password, n, 1),
        ("minimal SQL", 1): lambda n: direct_sql(stack, password, n, 1, True),
        ("vault", 20): lambda n: through_vault(stack, n, 20),
        ("direct SQL", 20): lambda n: direct_sql(stack, password, n, 20),
        ("minimal SQL", 20): lambda n: direct_sql(stack, password, n, 20, True),
    }
    tallies = {kind: Tally(f"{kind[0]}, {kind[1]} {'clients' if kind[0] == 'vault' else 'workers'}")
               for kind in kinds}
    try:
        for _ in range(args.rounds):
            for (what, workers), run in kinds.items():
                share = (max(50, args.total // 5) if workers == 1 else args.total) // args.rounds
                tallies[what, workers].add(*meter.measure(run, share))
    finally:
        drop_direct_admin(stack)
    single, direct_single, minimal_single, many, direct_many, minimal_many = (tally.row() for tally in tallies.values())
    ratios = {"1": single["rate_per_s"] / direct_single["rate_per_s"],
              "20": many["rate_per_s"] / direct_many["rate_per_s"],
              "safety_1": direct_single["rate_per_s"] / minimal_single["rate_per_s"],
              "safety_20": direct_many["rate_per_s"] / minimal_many["rate_per_s"]}
    print(f"vault / direct, 1 client:   {ratios['1']:.2f}   (target 0.8)")
    print(f"vault / direct, 20 clients: {ratios['20']:.2f}   (target 0.95)")
    print(f"stack SQL / minimal SQL, 1 worker:   {ratios['safety_1']:.2f}   (target 0.8)")
    print(f"stack SQL / minimal SQL, 20 workers: {ratios['safety_20']:.2f}   (target 0.8)")
    errors = burst_after_restart(stack)
    left = dynamic_users(stack)
    print(f"dynamic users left after the runs: {len(left)}")
    print(json.dumps({**{f"ratio_{k}": round(v, 3) for k, v in ratios.items()},
                      "runs": [single, direct_single, many, direct_many, minimal_single, minimal_many],
                      "burst_errors": errors,
                      "users_left": len(left)}), flush=True)
    return 1 if errors or left or many["errors"] or single["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
