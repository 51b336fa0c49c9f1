"""`make up`, `make preview` and `make down` themselves, from a checkout inside a private folder (mode
0700, as `mktemp -d` and home folders are), as a new user would run them: PostgreSQL's service
account cannot enter it, so its data goes where it can; drift made in Vault by hand is shown and put
back; and nothing is left after `make down`, 200 leases outstanding. The first `make up` makes the
checkout's virtualenv from requirements.txt, as for any new checkout; its pip reads the pinned wheels
from the tests' wheelhouse (tests/support/wheelhouse.py) instead of the package index."""

import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import hvac
import yaml

from components.postgres_sql import TeamDatabaseNames
from components.servers.openbao_metrics import CHECK_NAME as METRICS_CHECK
from components.servers.postgres import system_data_dir
from components.vault.database_pki import DatabasePkiArgs
from stacks.config import validate
from tests.support.ports import free_ports
from tests.support.processes import processes_naming, remove_data_dir
from tests.support.wheelhouse import pip_from_wheelhouse
from toolchain.env import ROOT
from toolchain.stack_file import file_values

STACK = "anywhere"


def copy_checkout(to: Path) -> None:
    """The checkout's files as they are now (tracked, and new ones not ignored), without its .venv,
    .pulumi, .tools or .data."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, to / name)


def run_in(checkout: Path, command: str) -> subprocess.CompletedProcess:
    """command in a shell of the checkout's own, as `eval "$(make -s env)"` makes it: nothing of this
    test run's Pulumi settings; pip installs from the wheelhouse."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_") and k != "PYTHONPATH"}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not p.startswith(str(ROOT)))
    # The python3 that toolchain/bootstrap.sh makes the virtualenv with.
    env = pip_from_wheelhouse(env, shutil.which("python3", path=env["PATH"]) or "python3")
    return subprocess.run(["bash", "-c", f'eval "$(make -s env)" && {command}'], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=1800)


def stop_processes_naming(*folders: Path) -> None:
    """Kills what is still running of this test's servers (processes whose command line names one of
    folders): the last resort when make down could not take the stack down."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue
        if any(str(folder) in cmdline for folder in folders):
            try:
                os.kill(int(proc.name), signal.SIGKILL)
            except OSError:
                pass


def make(target: str, checkout: Path) -> subprocess.CompletedProcess:
    return run_in(checkout, f"make {target} STACK={STACK}")


def stack_outputs(checkout: Path) -> dict:
    shown = run_in(checkout, f"python3 -m toolchain.stack_file {STACK} -- pulumi stack output --json --show-secrets "
                             f"--stack {STACK}")
    assert shown.returncode == 0, shown.stderr[-2000:]
    return json.loads(shown.stdout)


def expected_checks(stack_file: dict, checkout: Path) -> list[str]:
    """The names of the post-deploy checks a passing up of the stack file runs, in their order
    (components/vault/checks.py's run_checks), from its config: the PKI's chain when Vault's PKI issues
    the database's certificate, the certificate, each client's five lifecycle checks, then its two
    isolation checks, the dynamic users' holdings, PostgreSQL's counters, each client's revocation, each service user's
    static role, each team's retired bootstrap password, OpenBao's metrics, the bootstrap password,
    plaintext refused. (A single OpenBao node: no raft or
    per-node checks.)"""
    config = validate({k.removeprefix("dbcreds:"): v for k, v in stack_file.items()}, STACK, checkout)
    assert not config.vault.highly_available
    clients = [client.name for client in config.clients]
    names = [f"the CA chain Vault's PKI serves ({DatabasePkiArgs.mount_path}) is read"
             ] if config.database.certificates == "vault_pki" else []
    names.append("the database's certificate verifies (verify-full)")
    names += [f"{client}: {step}" for client in clients for step in (
        "AppRole login", "issue credentials within max_ttl", "allowed statements run over verify-full",
        "forbidden statements are refused", "renewal (lease id in the body) stays within max_ttl")]
    names += [f"{client}: {step}" for client in clients for step in (
        "cannot read other clients' credentials or protected paths", "cannot renew or revoke other clients' leases")]
    names.append("dynamic users hold nothing beyond their role's group")
    names.append("PostgreSQL's counters are read (sessions, dynamic users, commits, rollbacks, deadlocks)")
    names += [f"{client}: revoked (lease id in the body) user cannot log in" for client in clients]
    names += [f"static role {user.username}: its current password logs in" for user in config.database.service_users]
    # Each team's connection user's bootstrap password, rotated by Vault.
    names += [f"{TeamDatabaseNames(team.name).user}: its retired static password no longer logs in"
              for team in config.teams]
    # The stack runs its OpenBao: its metrics are read.
    names += [METRICS_CHECK] if config.runs_servers else []
    return names + ["the bootstrap admin password is rejected (root rotated)", "a plaintext connection is refused"]


def edit_by_hand(vault: hvac.Client) -> dict:
    """A dynamic role's SQL, a client's policy and an AppRole role's TTLs changed through Vault's API;
    returns what each was."""
    role = vault.read("database/roles/app")["data"]
    policy = vault.sys.read_acl_policy("client-app")["data"]["policy"]
    approle = vault.read("auth/approle/role/app")["data"]
    vault.write("database/roles/app", **{**role, "creation_statements": [
        *role["creation_statements"], 'GRANT pg_read_all_data TO "{{name}}"']})
    vault.sys.create_or_update_acl_policy("client-app", policy + '\npath "database/creds/reader" '
                                                                '{ capabilities = ["read"] }\n')
    vault.write("auth/approle/role/app", token_ttl=7 * 86400, token_max_ttl=30 * 86400)
    return {"sql": role["creation_statements"], "policy": policy,
            "ttls": (approle["token_ttl"], approle["token_max_ttl"])}


def as_declared(vault: hvac.Client) -> dict:
    approle = vault.read("auth/approle/role/app")["data"]
    return {"sql": vault.read("database/roles/app")["data"]["creation_statements"],
            "policy": vault.sys.read_acl_policy("client-app")["data"]["policy"],
            "ttls": (approle["token_ttl"], approle["token_max_ttl"])}


def take_leases(outputs: dict, ca: str, count: int) -> list[str]:
    """count leases, half for each client, each through the client's own AppRole login."""
    def login(name: str) -> hvac.Client:
        access = outputs["clients"][name]
        vault = hvac.Client(url=outputs["vault_addr"], verify=ca, timeout=60)
        vault.auth.approle.login(role_id=access["role_id"], secret_id=access["secret_id"],
                                 mount_point=access["approle_mount"])
        return vault

    clients = {name: login(name) for name in ("app", "reader")}
    paths = {name: outputs["clients"][name]["creds_path"] for name in clients}
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda name: clients[name].read(paths[name])["data"]["username"],
                             ["app", "reader"] * (count // 2)))


def test_make_targets_from_a_private_folder(figure):
    """make up, make preview and make down on a new stack of a checkout in a private folder: drift
    in Vault shown by make preview and put back by make up (after Vault was killed, too), and make
    down with 200 outstanding leases."""
    home = Path(tempfile.mkdtemp(prefix="dbcreds-home-"))
    assert home.stat().st_mode & 0o777 == 0o700
    checkout = home / "dbcreds"
    copy_checkout(checkout)
    config = file_values("dev")
    keys = ("vault_port", "vault_cluster_port", "db_port", "db_http_port")
    config.update({f"dbcreds:{key}": port for key, port in zip(keys, free_ports(len(keys)))})
    config["dbcreds:data_dir"] = f".data/{STACK}"
    stack_file = checkout / f"Pulumi.{STACK}.yaml"
    stack_file.write_text(yaml.safe_dump({"config": config}))
    data_dir = checkout / ".data" / STACK / "postgres"
    # From the stack file as written (safe_dump sorts its keys: the clients' order is the file's).
    checks = expected_checks(yaml.safe_load(stack_file.read_text())["config"], checkout)
    # dev's two clients, one service user and one team, its database certificate from Vault's PKI, its metrics.
    assert len(checks) == 25
    down_done = False
    try:
        up = make("up", checkout)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        outputs = stack_outputs(checkout)
        # The post-deploy checks ran and passed inside that up: exactly the ones the config asks for.
        assert outputs["checks"]["passed"], outputs["checks"]
        assert [check["name"] for check in outputs["checks"]["checks"]] == checks
        if os.geteuid() == 0:
            # PostgreSQL runs as its service account, which cannot enter the 0700 folder: its data is
            # under the system's data root, and the checkout links to it.
            assert data_dir.is_symlink() and data_dir.resolve() == system_data_dir(data_dir)
        else:
            # PostgreSQL runs as this user, who can enter the folder: its data is there, linked to nothing.
            assert data_dir.is_dir() and not data_dir.is_symlink() and not system_data_dir(data_dir).exists()
        # The stack file is as it was: the salt stays out of it.
        assert "encryptionsalt" not in stack_file.read_text()

        ca = home / "vault-ca.pem"
        ca.write_text(outputs["vault_ca_pem"])
        vault = hvac.Client(url=outputs["vault_addr"], token=outputs["vault_admin_token"], verify=str(ca))
        declared = edit_by_hand(vault)
        assert as_declared(vault) != declared
        # make preview refreshes: it shows each of the three to update, and the two that run at every
        # update (the checks and the expired users' reaper).
        preview = make("preview", checkout)
        assert preview.returncode == 0, preview.stdout[-3000:] + preview.stderr[-3000:]
        assert "--refresh" in preview.stderr and "5 to update" in preview.stdout
        for name in ("engine-role-app", "app-policy", "app-approle"):
            assert f"::{name}]" in preview.stdout, name
        assert "pg_read_all_data" in preview.stdout and "2592000" in preview.stdout

        # Vault killed as well: make up starts it with a plain up, then refreshes and puts all back.
        os.kill(int((checkout / ".data" / STACK / "openbao" / "bao.pid").read_text()), signal.SIGKILL)
        up = make("up", checkout)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        assert "does not answer: no refresh through it" in up.stderr
        assert as_declared(vault) == declared
        assert stack_outputs(checkout)["checks"]["passed"]

        # make backup writes one encrypted file for the stack, readable by its owner only; make restore
        # without FROM is refused naming it, before anything changes.
        backup = make("backup", checkout)
        assert backup.returncode == 0, backup.stdout[-3000:] + backup.stderr[-3000:]
        (written,) = [Path(line) for line in backup.stdout.splitlines() if line.endswith(".dbcreds-backup")]
        assert written.parent == checkout / ".data" / "backups" / STACK and written.stat().st_mode & 0o777 == 0o600
        refused = make("restore", checkout)
        assert refused.returncode != 0 and "FROM is not set" in refused.stderr, refused.stderr[-2000:]
        assert stack_outputs(checkout)["checks"]["passed"]

        users = take_leases(outputs, str(ca), 200)
        assert len(set(users)) == 200
        started = time.monotonic()
        down = make("down", checkout)
        seconds = time.monotonic() - started
        down_done = down.returncode == 0
        assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-3000:]
        # What down proved before destroying: Vault listed no lease, the database no dynamic user.
        assert "revoking 200 lease(s) under database/" in down.stderr
        assert "no lease and no dynamic database user left" in down.stderr
        assert "no lease, no dynamic user, no server left" in down.stderr
        assert not data_dir.exists() and not system_data_dir(data_dir).exists()
        assert processes_naming(checkout / ".data" / STACK) == []
        figure(f"make down with 200 outstanding leases: {seconds:.1f} s")
    finally:
        # Whatever failed, and wherever (an up that failed or timed out may have started servers before
        # PostgreSQL's folder existed): make down takes down what the stack holds, then anything of the
        # stack's servers still running is stopped, and its folders removed (the one under the system's
        # data root too).
        if not down_done:
            make("down", checkout)
            stop_processes_naming(checkout / ".data" / STACK, system_data_dir(data_dir))
        remove_data_dir(home)
