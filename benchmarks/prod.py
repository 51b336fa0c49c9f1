"""The prod stack on the project's cluster: how long its `up`s and `make down` take, how long the
in-cluster checks run, and issuance through the cluster's Vault against a direct SQL loop on the same
database, in the same run.

    make cluster-up && .venv/bin/python benchmarks/prod.py [--total 600] [--rounds 2]

A temporary stack of the root program with the prod stack file's config (its own namespace and
port-forward port) on the cluster of `.data/cluster/kubeconfig`: its first `up` from nothing, a no-op
`up` (the checks only), the checks Job's own time (the report's), then, in turns, `--total` credentials
issued and revoked through Vault as the `app` client (20 clients, from this machine to the Service's
cluster IP, verifying its name) and by a direct SQL loop (the role's creation and revocation SQL, as an
admin like Vault's, through the database Service's cluster IP), and last `make down`'s code. Prints
each figure and one JSON line.
"""

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import hvac  # noqa: E402
from pulumi import automation as auto  # noqa: E402

import issuance  # noqa: E402
from components.kubernetes import manifests as m  # noqa: E402
from stacks import config as stack_settings  # noqa: E402
from tests.automation import root_program, stack_file_config, temporary_stack  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.vault_load import name_verified_session  # noqa: E402
from toolchain import down  # noqa: E402
from toolchain.env import ROOT  # noqa: E402

KUBECONFIG = ROOT / ".data" / "cluster" / "kubeconfig"
WORKERS = 20


class ClusterStack(issuance.Stack):
    """issuance.Stack for a temporary stack on a cluster: Vault and the database through their Services'
    cluster IPs (this machine routes to them through the cluster's link), verifying their names."""

    def __init__(self, stack: auto.Stack, outputs: dict, kubeconfig: Path):
        self.name, self.stack, self.outputs = stack.name, stack, outputs
        self.config = stack_settings.of_stack(stack, ROOT)
        namespace = self.config.target.namespace
        self._vault_host, self._db_host = m.service_host("vault", namespace), m.service_host("db", namespace)
        self._vault_ip, self._db_ip = (service_ip(kubeconfig, namespace, name) for name in ("vault", "db"))
        self._ca = tempfile.NamedTemporaryFile("w", suffix=".pem")
        self._ca.write(outputs["vault_ca_pem"])
        self._ca.flush()

    def client(self) -> hvac.Client:
        access = self.outputs["clients"][issuance.CLIENT]
        vault = hvac.Client(url=f"https://{self._vault_ip}:8200", timeout=60,
                            session=name_verified_session(self._vault_host, self._ca.name))
        vault.auth.approle.login(role_id=access["role_id"], secret_id=access["secret_id"],
                                 mount_point=access["approle_mount"])
        return vault

    def database_address(self) -> dict:
        return {"host": self._db_host, "hostaddr": self._db_ip, "port": m.DB_PORT}


def service_ip(kubeconfig: Path, namespace: str, name: str) -> str:
    import subprocess

    return subprocess.run([str(ROOT / ".tools" / "bin" / "kubectl"), f"--kubeconfig={kubeconfig}", "-n", namespace,
                           "get", "service", name, "-o", "jsonpath={.spec.clusterIP}"],
                          capture_output=True, text=True, check=True).stdout


def timed(run) -> tuple[float, object]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--total", type=int, default=600, help="credentials per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--kubeconfig", default=str(KUBECONFIG))
    args = parser.parse_args()
    kubeconfig = Path(args.kubeconfig)
    if not kubeconfig.exists():
        raise SystemExit(f"no cluster: {kubeconfig} is missing (make cluster-up)")
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        namespace = f"bench-{uuid.uuid4().hex[:6]}"
        with temporary_stack(root_program(tmp_path), tmp_path, "prod-bench") as stack:
            stack.set_all_config({
                **stack_file_config("prod"), "dbcreds:k8s_kubeconfig": auto.ConfigValue(str(kubeconfig)),
                "dbcreds:k8s_namespace": auto.ConfigValue(namespace),
                "dbcreds:data_dir": auto.ConfigValue(str(tmp_path / "data")),
                "dbcreds:vault_port": auto.ConfigValue(str(free_port())),
            })
            figures["first up s"], result = timed(lambda: stack.up(on_output=lambda _: None))
            figures["no-op up s"], result = timed(lambda: stack.up(on_output=lambda _: None))
            outputs = {k: v.value for k, v in result.outputs.items()}
            figures["in-cluster checks s"] = outputs["checks"]["seconds"]
            figures["the checks' Job s"] = outputs["checks"]["job_seconds"]
            for name in ("first up s", "no-op up s", "the checks' Job s", "in-cluster checks s"):
                print(f"{name:34} {figures[name]:7.1f}", flush=True)
            cluster_stack = ClusterStack(stack, outputs, kubeconfig)
            password = issuance.direct_admin(cluster_stack)
            tallies = {"vault": issuance.Tally(f"through Vault, {WORKERS} clients"),
                       "direct": issuance.Tally(f"direct SQL, {WORKERS} workers")}
            try:
                for _ in range(args.rounds):
                    tallies["vault"].add(issuance.through_vault(cluster_stack, args.total, WORKERS), {})
                    tallies["direct"].add(issuance.direct_sql(cluster_stack, password, args.total, WORKERS), {})
            finally:
                issuance.drop_direct_admin(cluster_stack)
            rows = {k: t.row() for k, t in tallies.items()}
            figures["vault / direct"] = rows["vault"]["rate_per_s"] / rows["direct"]["rate_per_s"]
            print(f"{'through Vault / direct SQL':34} {figures['vault / direct']:7.2f}", flush=True)
            figures["dynamic users left"] = len(issuance.dynamic_users(cluster_stack))
            figures["make down s"], _ = timed(lambda: down.down(stack.name, stack.workspace.env_vars,
                                                                Path(stack.workspace.work_dir)))
            print(f"{'make down s':34} {figures['make down s']:7.1f}", flush=True)
            figures["runs"] = rows
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
