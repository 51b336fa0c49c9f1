"""How far the Vault path can go on this machine: the stack's OpenBao beside lab OpenBao servers
(the same binary) with parts of the stack's promises taken away, each issuing the same role's
credentials from the same PostgreSQL, beside the direct SQL loop of `issuance.py`.

    make up && .venv/bin/python benchmarks/openbao_floor.py [--total 600] [--rounds 3]

The lab servers are not the product and nothing here changes the stack: they run from a temporary
folder on ports 18300 to 18302, with the stack's server certificate, and stop at the end.
- `inmem, no audit`: storage in memory, no audit device (what `bao server -dev` runs);
- `inmem, audit`: the same with a file audit device, as the stack's;
- `raft, no audit`: raft storage, as the stack's, and no audit device.
Each has the database engine configured as the stack configures it (the connection's verify-full
URL, username template, SCRAM verifier, the role's creation and revocation SQL and TTLs) with a
CREATEROLE admin like Vault's, and an AppRole client with the stack's `app` client's policy and, as
it, no `default` policy. The kinds take turns over the rounds, at 1 and 20 clients; it prints each
kind's rate and its ratio to the direct loop, and one JSON line.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import hvac

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import issuance  # noqa: E402
from components.servers.openbao import bao_binary  # noqa: E402
from components.sql_dialects import dialect_named  # noqa: E402
from components.postgres_sql import username_template  # noqa: E402
from components.vault_policies import client_policy, creds_path  # noqa: E402
from components.vault.secrets_engine import MAX_OPEN_CONNECTIONS, connection_url  # noqa: E402
from stacks import local_target  # noqa: E402

LAB_PORT = 18300


class LabVault:
    """One lab OpenBao server, configured as the stack configures its engine, seen as the benchmark's
    `issuance.Stack` is (client(), outputs)."""

    def __init__(self, name: str, folder: Path, port: int, storage: str, audit: bool, stack: issuance.Stack,
                 admin_password: str):
        self.name, self.pid = name, 0
        tls = local_target.vault_server(stack.config).data_dir / "tls"
        folder.mkdir()
        storage_block = ('storage "inmem" {}' if storage == "inmem" else
                         f'storage "raft" {{\n  path = "{folder}"\n  node_id = "lab"\n}}')
        audit_block = (f'audit "file" "file" {{\n  options {{\n    file_path = "{folder / "audit.log"}"\n  }}\n}}'
                       if audit else "")
        (folder / "config.hcl").write_text(f"""{storage_block}
listener "tcp" {{
  address         = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{port + 100}"
  tls_cert_file   = "{tls / 'server.crt'}"
  tls_key_file    = "{tls / 'server.key'}"
}}
{audit_block}
api_addr     = "https://127.0.0.1:{port}"
cluster_addr = "https://127.0.0.1:{port + 100}"
""")
        self.process = subprocess.Popen([str(bao_binary()), "server", f"-config={folder / 'config.hcl'}"],
                                        stdout=(folder / "log").open("w"), stderr=subprocess.STDOUT)
        self.pid = self.process.pid
        self.addr, self.ca = f"https://127.0.0.1:{port}", stack._ca.name
        try:
            self._start(stack, admin_password)
        except BaseException:
            self.stop()
            raise

    def _start(self, stack: issuance.Stack, admin_password: str) -> None:
        root = hvac.Client(url=self.addr, verify=self.ca, timeout=60)
        for _ in range(100):
            try:
                root.sys.is_initialized()
                break
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.1)
        keys = root.sys.initialize(secret_shares=1, secret_threshold=1)
        root.sys.submit_unseal_key(keys["keys"][0])
        root.token = keys["root_token"]
        self.root = root  # for its profiler (sys/pprof) when studying the floor
        for _ in range(100):  # raft elects itself leader after the unseal: health answers 200 once active
            if isinstance(root.sys.read_health_status(method="GET"), dict):
                break
            time.sleep(0.1)
        self._configure(root, stack, admin_password)

    def _configure(self, root: hvac.Client, stack: issuance.Stack, admin_password: str) -> None:
        role = next(c.role for c in stack.config.clients if c.name == issuance.CLIENT)
        spec = next(r for r in stack.config.database.roles if r.name == role)
        dialect = dialect_named(stack.config.database.engine)
        group = stack.outputs["db_group_roles"][role]
        db_ca = local_target.vault_server(stack.config).database_ca_file
        root.sys.enable_secrets_engine("database", path="database")
        root.write("database/config/app", plugin_name="postgresql-database-plugin", allowed_roles=[role],
                   connection_url=connection_url(stack.outputs["db_host"], stack.outputs["db_port"],
                                                 stack.outputs["db_name"], str(db_ca)),
                   username="bench_admin", password=admin_password, username_template=username_template(),
                   max_open_connections=MAX_OPEN_CONNECTIONS,
                   password_authentication=dialect.password_authentication)
        root.write(f"database/roles/{role}", db_name="app", default_ttl=spec.default_ttl, max_ttl=spec.max_ttl,
                   creation_statements=dialect.creation_statements(spec, group),
                   revocation_statements=dialect.revocation_statements(group))
        root.sys.create_or_update_policy("app", client_policy("database", role))
        root.sys.enable_auth_method("approle")
        # As the stack's clients: no `default` policy (which Vault would also parse again on every request).
        root.write("auth/approle/role/app", token_policies=["app"], token_no_default_policy=True, token_ttl="15m")
        self.role_id = root.read("auth/approle/role/app/role-id")["data"]["role_id"]
        self.secret_id = root.write("auth/approle/role/app/secret-id")["data"]["secret_id"]
        self.outputs = {"clients": {issuance.CLIENT: {"creds_path": creds_path("database", role)}}}

    def client(self) -> hvac.Client:
        vault = hvac.Client(url=self.addr, verify=self.ca, timeout=60)
        vault.auth.approle.login(role_id=self.role_id, secret_id=self.secret_id)
        return vault

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--total", type=int, default=600, help="credentials per 20-client run (a fifth at 1 "
                                                                  "client), over all rounds")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    stack = issuance.Stack("dev")
    if stack.config.target.kind != "local" or stack.config.database.engine != "postgresql":
        raise SystemExit("the floor runs beside the dev stack (local target, PostgreSQL)")
    password = issuance.direct_admin(stack)
    meter = issuance.CpuMeter(stack)
    stack_vault = meter.vault_pid
    labs: list[LabVault] = []
    with tempfile.TemporaryDirectory(prefix="openbao-floor-") as folder:
        try:
            for i, (name, storage, audit) in enumerate([("inmem, no audit", "inmem", False),
                                                        ("inmem, audit", "inmem", True),
                                                        ("raft, no audit", "raft", False)]):
                labs.append(LabVault(name, Path(folder) / str(i), LAB_PORT + i, storage, audit, stack, password))
            targets = [("the stack's (raft, audit)", stack, stack_vault)] + [(lab.name, lab, lab.pid) for lab in labs]
            tallies: dict = {}
            for _ in range(args.rounds):
                for workers in (1, 20):
                    share = (max(50, args.total // 5) if workers == 1 else args.total) // args.rounds
                    for name, target, pid in targets:
                        meter.vault_pid = pid
                        tally = tallies.setdefault((name, workers), issuance.Tally(f"{name}, {workers}"))
                        tally.add(*meter.measure(issuance.through_vault, target, share, workers))
                    tally = tallies.setdefault(("direct", workers), issuance.Tally(f"direct SQL, {workers}"))
                    tally.add(*meter.measure(issuance.direct_sql, stack, password, share, workers))
        finally:  # the lab servers stop before their folder goes
            for lab in labs:
                lab.stop()
            issuance.drop_direct_admin(stack)
    rows = {kind: tally.row() for kind, tally in tallies.items()}
    ratios = {f"{name}, {workers}": rows[name, workers]["rate_per_s"] / rows["direct", workers]["rate_per_s"]
              for name, workers in rows if name != "direct"}
    for kind, ratio in ratios.items():
        print(f"{kind:40} / direct: {ratio:.2f}")
    left = issuance.dynamic_users(stack)
    print(f"dynamic users left after the runs: {len(left)}")
    print(json.dumps({"ratios": {k: round(v, 3) for k, v in ratios.items()}, "runs": list(rows.values()),
                      "users_left": len(left)}), flush=True)
    return 1 if left or any(row["errors"] for row in rows.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
