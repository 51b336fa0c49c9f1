"""Credential issuance through Vault beside a direct SQL loop on the same server; a cold-start burst.

    .venv/bin/python benchmarks/issuance.py [--total 1000]

Starts a real PostgreSQL and OpenBao (as the tests do), configures the
database engine with the stack's SQL, then prints:
- issuance (creds read) and revocation through Vault at 1 and 20 concurrent
  clients: rate, p50/p95/p99 issuance latency, errors;
- a direct loop running the same creation and revocation SQL over one
  persistent admin connection per worker, serialised by an advisory lock as
  Vault's plugin serialises them, and Vault's rate as a ratio of it;
- a burst of 20 concurrent issuances right after a restart and unseal.
The engine is configured through the Vault API, as the pulumi-vault provider
cannot be built here (README).
"""

import argparse
import concurrent.futures
import datetime
import secrets
import statistics
import sys
import time
from pathlib import Path

from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.local.openbao import unseal  # noqa: E402
from components.postgres_sql import creation_statements, group_role_name, revocation_statements  # noqa: E402
from tests.support.demo import APP, READER  # noqa: E402
from tests.support.postgres import create_groups, running_postgres  # noqa: E402
from tests.support.vault import configure_database_engine, running_openbao  # noqa: E402

LOCK = 0x76617574  # one advisory lock for the direct loop, as the plugin takes one


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def summary(name: str, seconds: float, latencies: list[float], errors: int) -> dict:
    ms = [x * 1000 for x in latencies]
    row = {"run": name, "n": len(latencies), "errors": errors, "rate_per_s": len(latencies) / seconds,
           "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "p99_ms": percentile(ms, 99)}
    print(f"{name:34} n={row['n']:5} errors={errors:3} rate={row['rate_per_s']:7.1f}/s "
          f"p50={row['p50_ms']:6.1f}ms p95={row['p95_ms']:6.1f}ms p99={row['p99_ms']:6.1f}ms", flush=True)
    return row


def through_vault(vault, total: int, workers: int) -> dict:
    """Each worker issues credentials (timed) and revokes the lease, until `total` are done."""
    def one(_):
        start = time.perf_counter()
        secret = vault.root.read("database/creds/app")
        elapsed = time.perf_counter() - start
        vault.root.sys.revoke_lease(lease_id=secret["lease_id"])
        return elapsed

    latencies, errors = [], 0
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for future in concurrent.futures.as_completed([pool.submit(one, i) for i in range(total)]):
            try:
                latencies.append(future.result())
            except Exception:  # noqa: BLE001 - counted
                errors += 1
    return summary(f"vault, {workers} clients", time.perf_counter() - start, latencies, errors)


def direct_admin(db) -> str:
    """A second admin like the one Vault uses (whose password Vault rotated): CREATEROLE, no superuser."""
    password = secrets.token_urlsafe(24)
    with db.as_superuser(db.database) as conn:
        conn.execute(sql.SQL("CREATE ROLE bench_admin LOGIN CREATEROLE PASSWORD {}").format(sql.Literal(password)))
        conn.execute("GRANT pg_signal_backend TO bench_admin")
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO bench_admin").format(sql.Identifier(db.database)))
    return password


def direct_sql(db, password: str, total: int, workers: int) -> dict:
    """The same creation and revocation SQL as an admin, one connection per worker, under one lock."""
    group = group_role_name("dbcreds_group", APP)
    create, revoke = creation_statements(group), revocation_statements()

    def worker(count: int) -> list[float]:
        times = []
        with db.connect("bench_admin", password) as conn:
            for _ in range(count):
                name = f"v_direct_{secrets.token_hex(10)}_{int(time.time())}"
                expiry = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).isoformat()
                start = time.perf_counter()
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
                    for statement in create:
                        conn.execute(statement.replace("{{name}}", name).replace(
                            "{{password}}", secrets.token_urlsafe(20)).replace("{{expiration}}", expiry))
                times.append(time.perf_counter() - start)
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
                    for statement in revoke:
                        conn.execute(statement.replace("{{name}}", name))
        return times

    shares = [total // workers + (1 if i < total % workers else 0) for i in range(workers)]
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        latencies = [t for times in pool.map(worker, shares) for t in times]
    return summary(f"direct SQL, {workers} workers", time.perf_counter() - start, latencies, 0)


def burst_after_restart(vault, keys: list[str], size: int = 20) -> int:
    """Restart and unseal, then `size` concurrent issuances with no warm-up; returns the errors."""
    vault.server.stop()
    vault.server.start()
    unseal(vault.server.client(), keys)
    errors = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=size) as pool:
        futures = [pool.submit(vault.root.read, "database/creds/app") for _ in range(size)]
        for future in concurrent.futures.as_completed(futures):
            try:
                vault.root.sys.revoke_lease(lease_id=future.result()["lease_id"])
            except Exception as error:  # noqa: BLE001 - counted and shown
                errors += 1
                print(f"  burst error: {error}", flush=True)
    print(f"{'burst after restart and unseal':34} n={size:5} errors={errors:3}", flush=True)
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--total", type=int, default=1000, help="credentials per concurrent run")
    args = parser.parse_args()
    with running_postgres() as db, running_openbao() as vault:
        create_groups(db, (READER, APP), "dbcreds_group")
        configure_database_engine(vault, db, (READER, APP))
        keys = vault.unseal_keys
        password = direct_admin(db)
        single = through_vault(vault, max(50, args.total // 5), 1)
        direct_single = direct_sql(db, password, max(50, args.total // 5), 1)
        many = through_vault(vault, args.total, 20)
        direct_many = direct_sql(db, password, args.total, 20)
        print(f"vault / direct, 1 client:   {single['rate_per_s'] / direct_single['rate_per_s']:.2f}")
        print(f"vault / direct, 20 clients: {many['rate_per_s'] / direct_many['rate_per_s']:.2f}")
        errors = burst_after_restart(vault, keys)
        with db.as_superuser(db.database) as conn:
            left = conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v\\_%'").fetchone()[0]
        print(f"dynamic roles left after the runs: {left}")
        return 1 if errors or left or many["errors"] or single["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
