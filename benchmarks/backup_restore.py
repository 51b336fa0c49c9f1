"""What `make backup` and `make restore` cost on a stack with many outstanding leases: on a temporary dev
stack of the root program, LEASES credentials issued by 20 of the app client's logins (an hour each),
then a backup (toolchain/backup.py), the stack lost whole (servers stopped, data folders and state
removed), and a restore (its `up` and post-deploy checks included).

    .venv/bin/python benchmarks/backup_restore.py [--leases 1000]

Prints the backup's time and sizes, the restore's time by step, that every lease came back, and one
JSON line.
"""

import argparse
import concurrent.futures
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stacks import local_target as local  # noqa: E402
from tests.support.dev_stack import dev_stack  # noqa: E402
from tests.support.processes import remove_data_dir  # noqa: E402
from toolchain import backup  # noqa: E402
from toolchain.backup_file import human_size  # noqa: E402

WORKERS = 20


def app_leases(running) -> set[str]:
    listed = running.admin().list("sys/leases/lookup/database/creds/app/")
    return set(listed["data"]["keys"]) if listed else set()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leases", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, dev_stack(Path(tmp), "backupbench") as running:
        name, env = running.stack.name, running.stack.workspace.env_vars
        work_dir = Path(running.stack.workspace.work_dir)
        path = running.outputs["clients"]["app"]["creds_path"]
        clients = [running.login("app") for _ in range(WORKERS)]
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda i: clients[i % WORKERS].read(path), range(args.leases)))
        issuing = time.perf_counter() - started
        outstanding = app_leases(running)
        print(f"{len(outstanding)} app leases outstanding ({issuing:.1f} s to issue), "
              f"{len(local.dynamic_users(running.config))} dynamic users")

        started = time.perf_counter()
        made = backup.backup(name, env, str(Path(tmp) / "backups"), work_dir)
        backup_seconds = time.perf_counter() - started
        print(f"backup {backup_seconds:.1f} s: {human_size(made.sizes['file'])} encrypted ("
              + ", ".join(f"{part} {human_size(size)}" for part, size in made.sizes.items() if part != "file") + ")")

        for node in local.vault_nodes(running.config):
            node.stop()
        local.database_server(running.config).stop()
        remove_data_dir(running.data_dir)
        shutil.rmtree(Path(env["PULUMI_BACKEND_URL"].removeprefix("file://")) / ".pulumi")

        started = time.perf_counter()
        steps = backup.restore(name, env, str(made.path), "", work_dir)
        restore_seconds = time.perf_counter() - started
        print(f"restore {restore_seconds:.1f} s: " + ", ".join(f"{s} {t:.1f} s" for s, t in steps.items()))
        back = app_leases(running)
        users = len(local.dynamic_users(running.config))
        print(f"after the restore: {len(outstanding & back)} of the {len(outstanding)} leases back, "
              f"{users} dynamic users")
        assert outstanding <= back, f"{len(outstanding - back)} leases did not come back"
    print(json.dumps({"leases": len(outstanding), "backup_s": round(backup_seconds, 1), "file_bytes": made.sizes["file"],
                      "restore_s": round(restore_seconds, 1), "steps_s": {s: round(t, 1) for s, t in steps.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
