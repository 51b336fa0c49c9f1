"""`make backup STACK=…` and `make restore STACK=… FROM=<file> [FORCE=yes]`, for the targets whose
servers run on this machine (local, docker), through each target's `backups` (stacks/backups.py).

A backup is one encrypted file (`toolchain/backup_file.py` holds its format) in BACKUP_DIR (default
`.data/backups/<stack>/`), mode 0600, named with its UTC time. It holds, taken in this order:

1. OpenBao's raft snapshot (`sys/storage/raft/snapshot`, with the stack's admin token);
2. the database's dump (`pg_dumpall` as the superuser: over the server's Unix socket, or in its container);
3. the state's export (`pulumi stack export`: its secrets stay encrypted with the stack's passphrase).

The snapshot comes before the dump: a credential issued between the two has a user in the dump and
no lease in the snapshot, which the expired users' reaper drops at an `up` once it expired; the other
way round, a lease would outlive a user that was never restored.

A restore decrypts the whole file first (a wrong passphrase or a damaged file changes nothing), then
follows the target's steps (local: `stacks.backups.restore_steps`): state, the servers, PostgreSQL,
OpenBao, the stack's `up`.

  python3 -m toolchain.backup backup STACK [BACKUP_DIR]
  python3 -m toolchain.backup restore STACK FROM [FORCE]

The kubernetes and external targets are refused, naming the target and why.
"""

import datetime
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import hvac
from pulumi import automation as auto

from components.servers.openbao import LocalOpenBaoError, serving_address
from components.servers.postgres import LocalPostgresError
from components.servers.process import pem_file
from stacks import config as stack_settings
from stacks import targets
from stacks.backups import DATABASE_DUMP, RAFT_SNAPSHOT, BackupError, Restored, ServerBackups
from stacks.config import StackConfig
from toolchain.backup_file import (
    MANIFEST,
    PARTS,
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
)
from toolchain.down import DownError, open_stack
from toolchain.env import PASSPHRASE_VARIABLE, ROOT, pulumi_env
from toolchain.policy_gate import stack_config
from toolchain.stack_file import StackFileError

def say(message: str) -> None:
    print(f"[backup] {message}", file=sys.stderr, flush=True)


def server_backups(name: str, config: StackConfig) -> ServerBackups:
    """The stack's servers as its target backs them up (a BackupError naming the target and why, where
    it does not)."""
    try:
        return targets.of(config).backups(config)
    except BackupError as error:
        raise BackupError(f"stack {name!r} runs on the {config.target.kind} target: {error}") from None


def unsupported(name: str, config: StackConfig) -> str:
    """Why the stack cannot be backed up or restored here (empty when it can)."""
    try:
        server_backups(name, config)
    except BackupError as error:
        return str(error)
    return ""


def refuse_other_targets(name: str, work_dir: Path) -> None:
    """Refuses a stack whose stack file puts it on a target not backed up here, before its state is read."""
    try:
        config = stack_config(name, work_dir)
    except (stack_settings.ConfigError, StackFileError):
        return  # Read again from the stack itself below, which names what is wrong.
    refusal = unsupported(name, config)
    if refusal:
        raise BackupError(refusal)


def stack_servers(stack: auto.Stack, work_dir: Path) -> tuple[StackConfig, ServerBackups]:
    """The stack's validated config and its servers, if they are ones this can back up or restore."""
    config = stack_settings.of_stack(stack, work_dir)
    return config, server_backups(stack.name, config)


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
    config, servers = stack_servers(stack, work_dir)
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
        servers.dump_database({key: value.value for key, value in outputs.items()}, parts / DATABASE_DUMP)
        pulumi_cli(["stack", "export", "--stack", name, "--file", str(parts / STATE)], env, work_dir)
        sizes = {part: (parts / part).stat().st_size for part in (STATE, RAFT_SNAPSHOT, DATABASE_DUMP)}
        manifest = {"stack": name, "target": config.target.kind, "created": now.isoformat(),
                    "database": config.database.name, "openbao_nodes": config.vault.nodes, "seal": config.vault.seal, "sizes": sizes}
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
        config, servers = stack_servers(stack, work_dir)
        if manifest.get("target", "local") != config.target.kind:
            raise BackupError(f"FROM={source} is a backup of a stack on the {manifest.get('target', 'local')} "
                              f"target; stack {name!r} is on the {config.target.kind} target now")
        if config.vault.nodes != manifest["openbao_nodes"] or config.vault.seal != manifest["seal"]:
            raise BackupError(f"stack {name!r} now has {config.vault.nodes} OpenBao node(s) with the "
                              f"{config.vault.seal} seal; the backup has {manifest['openbao_nodes']} with the "
                              f"{manifest['seal']} seal: restore with the stack file it was made with")
        resources = len(stack.export_stack().deployment.get("resources") or [])
        refusal = overwrite_refusal(name, servers.running(), servers.data(), resources)
        if refusal and not force:
            raise BackupError(refusal)
        restored = None
        for step in servers.steps(stop_first=bool(refusal)):
            say(f"{step.name}: {step.what}")
            started = time.monotonic()
            if step.name == "state":
                pulumi_cli(["stack", "import", "--stack", name, "--file", str(parts / STATE)], env, work_dir)
                restored = Restored(stack.export_stack().deployment.get("resources") or [],
                                    {key: value.value for key, value in stack.outputs().items()}, parts,
                                    lambda args: pulumi_cli([*args, "--stack", name], env, work_dir))
            elif step.name == "up":
                run_up(name, env, work_dir)
            else:
                servers.run(step.name, restored)
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
