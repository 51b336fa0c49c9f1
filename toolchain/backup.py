"""`make backup STACK=…` and `make restore STACK=… FROM=<file> [FORCE=yes]`, for the local target.

A backup is one encrypted file (`toolchain/backup_file.py` holds its format) in BACKUP_DIR (default
`.data/backups/<stack>/`), mode 0600, named with its UTC time. It holds, taken in this order:

1. OpenBao's raft snapshot (`sys/storage/raft/snapshot`, with the stack's admin token);
2. the database's dump (`pg_dumpall` over the server's Unix socket, as the superuser);
3. the state's export (`pulumi stack export`: its secrets stay encrypted with the stack's passphrase).

The snapshot comes before the dump: a credential issued between the two has a user in the dump and
no lease in the snapshot, which the expired users' reaper drops at an `up` once it expired; the other
way round, a lease would outlive a user that was never restored.

A restore decrypts the whole file first (a wrong passphrase or a damaged file changes nothing), then
follows `backup_file.restore_steps`: state, PostgreSQL, OpenBao, the stack's `up`.

  python3 -m toolchain.backup backup STACK [BACKUP_DIR]
  python3 -m toolchain.backup restore STACK FROM [FORCE]

The docker, kubernetes and external targets are refused, naming the target.
"""

import datetime
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
from pulumi import automation as auto

from components.local.providers.openbao_server import RESOURCE_TYPE as OPENBAO_SERVER_TYPE
from components.servers.openbao import (
    INIT_TIMEOUT_SECONDS,
    LocalOpenBao,
    LocalOpenBaoError,
    initialize,
    node_state,
    serving_address,
    unseal,
    wait_active,
    wait_unsealed,
)
from components.servers.postgres import PG_BIN, SUPERUSER, LocalPostgres, LocalPostgresError
from components.servers.process import pem_file
from stacks import config as stack_settings
from stacks import local_target
from stacks.config import StackConfig
from toolchain.backup_file import (
    DATABASE_DUMP,
    MANIFEST,
    PARTS,
    RAFT_SNAPSHOT,
    STATE,
    BackupFileError,
    DecryptingReader,
    WrongPassphrase,
    EncryptingWriter,
    backup_folder,
    backup_name,
    human_size,
    overwrite_refusal,
    parse_force,
    parse_restore_from,
    passphrase_of,
    restore_steps,
    unexpected_load_errors,
)
from toolchain.down import DownError, open_stack
from toolchain.env import PASSPHRASE_VARIABLE, ROOT, pulumi_env
from toolchain.policy_gate import stack_config
from toolchain.stack_file import StackFileError

#: pg_dumpall and psql: a dump or a load of the stack's database may take this long.
DATABASE_SECONDS = 1800
#: The signature (key and value) of the object `pulumi stack export --show-secrets` wraps a secret's
#: plaintext in.
SECRET_SIGNATURE = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")


class BackupError(RuntimeError):
    pass


def say(message: str) -> None:
    print(f"[backup] {message}", file=sys.stderr, flush=True)


def unsupported(name: str, config: StackConfig) -> str:
    """Why the stack cannot be backed up or restored here (empty when it can): only the local target's
    servers run as processes on this machine, and only PostgreSQL is dumped."""
    if config.target.kind != "local":
        return (f"stack {name!r} runs on the {config.target.kind} target: backup and restore are built for the "
                "local target only (its servers run as processes on this machine); back up that target's "
                "servers with its own tooling")
    if config.database.engine == "cockroachdb":
        return f"stack {name!r}'s database is CockroachDB: backup and restore are built for PostgreSQL only"
    return ""


def refuse_other_targets(name: str, work_dir: Path) -> None:
    """Refuses a stack whose stack file puts it on another target, before its state is read."""
    try:
        config = stack_config(name, work_dir)
    except (stack_settings.ConfigError, StackFileError):
        return  # Read again from the stack itself below, which names what is wrong.
    refusal = unsupported(name, config)
    if refusal:
        raise BackupError(refusal)


def local_config(stack: auto.Stack, work_dir: Path) -> StackConfig:
    """The stack's validated config, if it is one this can back up or restore."""
    config = stack_settings.of_stack(stack, work_dir)
    refusal = unsupported(stack.name, config)
    if refusal:
        raise BackupError(refusal)
    return config


def pulumi_cli(args: list[str], env: dict[str, str], work_dir: Path) -> str:
    """Runs the built `pulumi` in the stack's project folder; its stdout, or a BackupError with its stderr."""
    result = subprocess.run(["pulumi", *args], cwd=work_dir, env={**os.environ, **env}, capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise BackupError(f"pulumi {' '.join(args[:2])} failed: {result.stderr.strip()}")
    return result.stdout


def admin_vault(outputs: dict[str, auto.OutputValue], ca_file: str, timeout: int = 300) -> hvac.Client:
    addresses = outputs["vault_addrs"].value if "vault_addrs" in outputs else [outputs["vault_addr"].value]
    return hvac.Client(url=serving_address(addresses, ca_file), token=outputs["vault_admin_token"].value,
                       verify=ca_file, timeout=timeout)


def take_raft_snapshot(outputs: dict[str, auto.OutputValue], target: Path) -> None:
    with pem_file(outputs["vault_ca_pem"].value) as ca:
        vault = admin_vault(outputs, ca)
        try:
            response = vault.sys.take_raft_snapshot()
        except Exception as error:  # noqa: BLE001 - down, sealed, refused: the finding
            raise BackupError(f"OpenBao at {vault.url} gave no raft snapshot ({type(error).__name__}: {error}); "
                              "is it up and unsealed? (make up)") from None
        with response, open(target, "wb") as out:
            for block in response.iter_content(1 << 20):
                out.write(block)


def dump_database(server: LocalPostgres, target: Path) -> None:
    """pg_dumpall as the superuser over the server's Unix socket (peer authentication)."""
    if not server.running:
        raise BackupError(f"PostgreSQL in {server.data_dir} is not running: make up first")
    result = subprocess.run([str(PG_BIN / "pg_dumpall"), "--host", str(server.data_dir), "--port", str(server.port),
                             "--username", SUPERUSER, "--no-password", "--file", str(target)],
                            capture_output=True, text=True, timeout=DATABASE_SECONDS)
    if result.returncode != 0:
        raise BackupError(f"pg_dumpall failed: {result.stderr.strip()}")


@dataclass(frozen=True)
class Backup:
    path: Path
    sizes: dict[str, int]


def backup(name: str, env: dict[str, str], folder_setting: str = "", work_dir: Path = ROOT,
           now: datetime.datetime | None = None) -> Backup:
    refuse_other_targets(name, work_dir)
    try:
        stack = open_stack(name, env, work_dir)
    except DownError:
        raise BackupError(f"stack {name!r} does not exist on this checkout's backend: nothing to back up") from None
    config = local_config(stack, work_dir)
    outputs = stack.outputs()
    if "vault_admin_token" not in outputs:
        raise BackupError(f"stack {name!r} has no OpenBao admin token among its outputs: nothing deployed to "
                          "back up (make up first)")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    folder = backup_folder(name, folder_setting, ROOT)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / backup_name(name, now)
    passphrase = passphrase_of(env[PASSPHRASE_VARIABLE])
    # The parts wait in a private folder beside the file (no wider than the servers' own data folders).
    with tempfile.TemporaryDirectory(prefix=".parts-", dir=folder) as parts_dir:
        parts = Path(parts_dir)
        take_raft_snapshot(outputs, parts / RAFT_SNAPSHOT)
        dump_database(local_target.database_server(config), parts / DATABASE_DUMP)
        pulumi_cli(["stack", "export", "--stack", name, "--file", str(parts / STATE)], env, work_dir)
        sizes = {part: (parts / part).stat().st_size for part in (STATE, RAFT_SNAPSHOT, DATABASE_DUMP)}
        manifest = {"stack": name, "target": "local", "created": now.isoformat(), "database": config.database.name,
                    "openbao_nodes": config.vault.nodes, "seal": config.vault.seal, "sizes": sizes}
        (parts / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        write_backup_file(path, parts, passphrase, name, now.isoformat())
    return Backup(path, {**sizes, "file": path.stat().st_size})


def write_backup_file(path: Path, parts: Path, passphrase: bytes, name: str, created: str, **scrypt_costs: int) -> None:
    """The PARTS in parts, packed and encrypted into path (mode 0600, made whole or not at all, never over
    another file)."""
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            writer = EncryptingWriter(out, passphrase, name, created, **scrypt_costs)
            with tarfile.open(fileobj=writer, mode="w|gz") as archive:
                for part in PARTS:
                    archive.add(parts / part, arcname=part)
            writer.close()
        os.link(partial, path)
    finally:
        partial.unlink(missing_ok=True)


# ---------------------------------------------------------------- restore


def unwrap_secrets(value: Any) -> Any:
    """A value of `pulumi stack export --show-secrets` with each secret's plaintext in its place."""
    if isinstance(value, dict):
        if value.get(SECRET_SIGNATURE[0]) == SECRET_SIGNATURE[1] and "plaintext" in value:
            return unwrap_secrets(json.loads(value["plaintext"]))
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def server_outputs(resources: list[dict], data_dir: Path, resource_type: str | None = None) -> dict[str, Any]:
    """The outputs (secrets in plaintext) of the server resource whose data folder is data_dir: the
    OpenBao or PostgreSQL server itself (it holds the certificates), not its keeper."""
    for resource in resources:
        outputs = unwrap_secrets(resource.get("outputs") or {})
        if (outputs.get("data_dir") == str(data_dir) and "cert_pem" in outputs
                and (resource_type is None or resource["type"] == resource_type)):
            return outputs
    raise BackupError(f"the restored state holds no server resource for {data_dir}: the backup is of another "
                      "layout (data_dir or ports changed since?)")


def decrypt_parts(source: Path, passphrase_file: str, into: Path) -> dict:
    """Decrypts and unpacks the backup into `into`; its manifest."""
    passphrase = passphrase_of(passphrase_file)
    with open(source, "rb") as raw:
        try:
            reader = DecryptingReader(raw, passphrase)
            with tarfile.open(fileobj=reader, mode="r|gz") as archive:
                for member in archive:
                    if member.name not in PARTS or not member.isfile():
                        raise BackupError(f"FROM={source}: an unexpected part {member.name!r}")
                    archive.extract(member, into, filter="data")
        except WrongPassphrase as error:
            raise BackupError(f"FROM={source}: {error} ({PASSPHRASE_VARIABLE}={passphrase_file})") from None
        except BackupFileError as error:
            raise BackupError(f"FROM={source}: {error}") from None
    missing = [part for part in PARTS if not (into / part).is_file()]
    if missing:
        raise BackupError(f"FROM={source}: the backup lacks {', '.join(missing)}")
    return json.loads((into / MANIFEST).read_text())


def remove_server_data(config: StackConfig) -> None:
    """Stops the stack's servers and removes their data folders (PostgreSQL's may be a link to where
    its data really is)."""
    for node in local_target.vault_nodes(config):
        node.stop()
        shutil.rmtree(node.data_dir, ignore_errors=True)
    database = local_target.database_server(config)
    database.stop()
    shutil.rmtree(database.data_dir.resolve(), ignore_errors=True)
    if database.data_dir.is_symlink():
        database.data_dir.unlink()


def data_folders(config: StackConfig) -> list[str]:
    folders = [node.data_dir for node in local_target.vault_nodes(config)]
    folders.append(local_target.database_server(config).data_dir)
    return [str(f) for f in folders if f.exists() and any(f.iterdir())]


def load_dump(server: LocalPostgres, dump: Path) -> None:
    result = subprocess.run([str(PG_BIN / "psql"), "--no-psqlrc", "--quiet", "--host", str(server.data_dir),
                             "--port", str(server.port), "--username", SUPERUSER, "--dbname", "postgres",
                             "--file", str(dump)],
                            capture_output=True, text=True, timeout=DATABASE_SECONDS)
    errors = unexpected_load_errors(result.stderr)
    if result.returncode != 0 or errors:
        raise BackupError(f"loading the dump into PostgreSQL failed: {'; '.join(errors[:5]) or result.stderr[-2000:]}")


def restore_database(resources: list[dict], config: StackConfig, dump: Path) -> None:
    server = local_target.database_server(config)
    props = server_outputs(resources, server.data_dir)
    server = LocalPostgres(server.data_dir, int(props["port"]))
    server.initdb(props["cert_pem"], props["key_pem"])
    server.start()
    load_dump(server, dump)


def configure_node(node: LocalOpenBao, props: dict[str, Any]) -> None:
    """The node's config, TLS and seal files as the restored state's server resource made them."""
    node.configure(props["ca_pem"], props["cert_pem"], props["key_pem"], props["database_ca_pem"],
                   props.get("peers") or (), [props["seal_key"]] if props.get("seal_key") else [])


def restore_snapshot(resources: list[dict], config: StackConfig, snapshot: Path) -> None:
    """OpenBao's first node started fresh with the restored state's config and seal, initialised with keys
    of its own (for this moment only: the snapshot brings the original keyring and tokens back), and the
    snapshot forced onto it."""
    first, seal = local_target.vault_nodes(config)[0], config.vault.seal
    configure_node(first, server_outputs(resources, first.data_dir, OPENBAO_SERVER_TYPE))
    first.start()
    client = first.client(timeout=INIT_TIMEOUT_SECONDS)
    client.token, throwaway_keys = initialize(client, 1, 1, seal)
    if seal == "shamir":
        unseal(client, throwaway_keys)
    else:
        wait_active(client)
    with open(snapshot, "rb") as data:
        response = client.adapter.post("/v1/sys/storage/raft/snapshot-force", data=data, raise_exception=False)
    # hvac gives a 200's JSON body as a dict, any other answer as the response.
    status = getattr(response, "status_code", 200)
    if status >= 400:
        raise BackupError(f"OpenBao at {first.address} refused the snapshot: {status} {response.text[:500]}")


def token_works(node: LocalOpenBao, token: str) -> bool:
    try:
        node.client(token, timeout=5).auth.token.lookup_self()
    except Exception:  # noqa: BLE001 - refused, sealed, or still restoring: not yet
        return False
    return True


def unseal_restored(resources: list[dict], config: StackConfig, admin_token: str) -> None:
    """Waits until the first node serves the snapshot's storage: the stack's admin token of the backup
    works. OpenBao restores a forced snapshot after it answered: with Shamir keys the node then seals
    itself (its keyring is the original's, which only the original keys open: the restored state's);
    the static seal's node opens it with the seal's key, which the state gave its config."""
    first = local_target.vault_nodes(config)[0]
    keys = server_outputs(resources, first.data_dir, OPENBAO_SERVER_TYPE)["unseal_keys"]
    deadline = time.monotonic() + INIT_TIMEOUT_SECONDS
    while not token_works(first, admin_token):
        state = node_state(first.client(timeout=5))
        if state == "sealed" and config.vault.seal == "shamir":
            unseal(first.client(), keys)
        if time.monotonic() > deadline:
            raise BackupError(f"OpenBao at {first.address} does not serve the backup's storage "
                              f"{INIT_TIMEOUT_SECONDS} s after the snapshot was sent ({state}): the backup's "
                              "admin token is refused; see its server.log")
        time.sleep(0.5)
    wait_active(first.client())


def join_others(resources: list[dict], config: StackConfig) -> None:
    """A cluster's other nodes, empty, join the restored first node and unseal themselves."""
    for node in local_target.vault_nodes(config)[1:]:
        configure_node(node, server_outputs(resources, node.data_dir, OPENBAO_SERVER_TYPE))
        node.start()
        wait_unsealed(node.client(), INIT_TIMEOUT_SECONDS)


def open_or_create_stack(name: str, env: dict[str, str], work_dir: Path) -> auto.Stack:
    try:
        return open_stack(name, env, work_dir)
    except DownError:
        say(f"stack {name} does not exist on this backend: creating it to import the state into")
        pulumi_cli(["stack", "init", name, "--secrets-provider", "passphrase"], env, work_dir)
        return open_stack(name, env, work_dir)


def run_up(name: str, env: dict[str, str], work_dir: Path) -> None:
    """The stack's `make up` (toolchain/up.py): a refresh, then an update whose checks prove the restore."""
    result = subprocess.run([sys.executable, "-m", "toolchain.up", name], cwd=work_dir, env={**os.environ, **env})
    if result.returncode != 0:
        raise BackupError(f"the stack's up after the restore failed (exit status {result.returncode}): its output "
                          "above names the check or resource")


def restore(name: str, env: dict[str, str], from_setting: str, force_setting: str = "",
            work_dir: Path = ROOT) -> dict[str, float]:
    """Restores the stack from the backup file; the seconds each step took."""
    source, force = parse_restore_from(from_setting), parse_force(force_setting)
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="dbcreds-restore-") as parts_dir:
        parts = Path(parts_dir)
        started = time.monotonic()
        manifest = decrypt_parts(source, env[PASSPHRASE_VARIABLE], parts)
        timings["decrypt"] = time.monotonic() - started
        if manifest["stack"] != name:
            raise BackupError(f"FROM={source} is a backup of stack {manifest['stack']!r}, not {name!r}")
        refuse_other_targets(name, work_dir)
        stack = open_or_create_stack(name, env, work_dir)
        config = local_config(stack, work_dir)
        if config.vault.nodes != manifest["openbao_nodes"] or config.vault.seal != manifest["seal"]:
            raise BackupError(f"stack {name!r} now has {config.vault.nodes} OpenBao node(s) with the "
                              f"{config.vault.seal} seal; the backup has {manifest['openbao_nodes']} with the "
                              f"{manifest['seal']} seal: restore with the stack file it was made with")
        resources = len(stack.export_stack().deployment.get("resources") or [])
        refusal = overwrite_refusal(name, local_target.running_servers(config), data_folders(config), resources)
        if refusal and not force:
            raise BackupError(refusal)
        for step in restore_steps(config.vault.nodes, config.vault.seal, stop_first=bool(refusal)):
            say(f"{step.name}: {step.what}")
            started = time.monotonic()
            if step.name == "stop":
                remove_server_data(config)
            elif step.name == "state":
                pulumi_cli(["stack", "import", "--stack", name, "--file", str(parts / STATE)], env, work_dir)
                restored = stack.export_stack().deployment.get("resources") or []
            elif step.name == "postgres":
                restore_database(restored, config, parts / DATABASE_DUMP)
            elif step.name == "openbao":
                restore_snapshot(restored, config, parts / RAFT_SNAPSHOT)
            elif step.name == "unseal":
                unseal_restored(restored, config, stack.outputs()["vault_admin_token"].value)
            elif step.name == "join":
                join_others(restored, config)
            elif step.name == "up":
                run_up(name, env, work_dir)
            timings[step.name] = time.monotonic() - started
    return timings


def main(argv: list[str]) -> int:
    usage = ("usage: python3 -m toolchain.backup backup STACK [BACKUP_DIR]\n"
             "       python3 -m toolchain.backup restore STACK FROM [FORCE]")
    if len(argv) < 2 or argv[0] not in ("backup", "restore"):
        print(usage, file=sys.stderr)
        return 2
    command, name, rest = argv[0], argv[1], argv[2:]
    try:
        if command == "backup":
            made = backup(name, pulumi_env(), rest[0] if rest else "")
            sizes = ", ".join(f"{part} {human_size(size)}" for part, size in made.sizes.items() if part != "file")
            say(f"stack {name}: {human_size(made.sizes['file'])} encrypted ({sizes})")
            print(made.path)
        else:
            timings = restore(name, pulumi_env(), rest[0] if rest else "", rest[1] if len(rest) > 1 else "")
            say(f"stack {name} restored and proved by its up: "
                + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in timings.items()))
    except (BackupError, BackupFileError, DownError, LocalOpenBaoError, LocalPostgresError,
            stack_settings.ConfigError, auto.CommandError) as error:
        say(f"ERROR: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
