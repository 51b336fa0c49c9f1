"""The docker stack for real: the root program on the stack's own dockerd, with images built here.

Up, the post-deploy checks pass; no secret in docker inspect, the containers' logs, the files uploaded
into them or the state, after that up and after a failing one (the checks failing on a client's role
broken by hand), nor in what the failing up said; killed containers come back on the next `up` with
their data; a restarted engine brings the containers back sealed, and `up` unseals; `make rotate-audit`
rotates OpenBao's audit log under a client's requests, losing none, and keeps KEEP; `make down`
(toolchain/down.py) revokes, proves no dynamic user is left, destroys, and removes the engine it
started with every image, container and volume in it. Skips only where the machine has no dockerd.
"""

import concurrent.futures
import io
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from components.docker.daemon import DockerEngineError, dockerd_binary
from stacks import config as stack_settings
from stacks import docker_target
from tests.automation import (local_servers_config, make_down, root_program, stack_file_config, state_text,
                              temporary_stack)
from tests.support.dev_stack import DevStack, quiet
from toolchain import rotate_audit
from toolchain.down import leases_left
from toolchain.up import keepers, servers_down
from toolchain.env import ROOT
from tests.support.audit_rotation import audited, each_once, rotated_under_requests
from tests.support.processes import remove_data_dir
from tests.support.secret_scan import failing_up, plaintext_secrets, role_broken_by_hand, search

#: Where the stack uploads files into its containers (OpenBao's folder, PostgreSQL's bootstrap files).
UPLOADED = ("/openbao", "/bootstrap")
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


def test_docker_stack_up_checks_restarts_and_down_leaves_nothing(tmp_path, capfd):
    data_dir = ROOT / ".data" / "tests" / f"docker-{uuid.uuid4().hex[:8]}"
    files = tmp_path / "files"
    files.mkdir()
    with temporary_stack(root_program(tmp_path), tmp_path, "docker") as stack:
        stack.set_all_config({**stack_file_config("docker"), **local_servers_config(
            data_dir, keys=("vault_port", "vault_cluster_port", "db_port"))})
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

            # Both containers killed: as make up does when a server does not answer, an up of the keepers
            # starts them (Vault unsealed with the keys from state), then an up with refresh; the checks pass.
            engine.docker("kill", *containers)
            assert len(servers_down(running.outputs)) == 2
            keeper_urns = keepers(stack.export_stack().deployment["resources"])
            assert sorted(urn.rsplit("::", 1)[1] for urn in keeper_urns) == ["db-running", "vault-running"]
            stack.up(on_output=quiet, target=keeper_urns)
            running._read(stack.up(on_output=quiet, refresh=True).outputs)
            assert running.outputs["checks"]["passed"], running.outputs["checks"]
            assert sorted(docker_ids(engine, "ps")) == sorted(containers)

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

            client = running.login("reader")
            creds = running.outputs["clients"]["reader"]["creds_path"]
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                issued = set(pool.map(lambda _: client.read(creds)["data"]["username"], range(DOWN_LEASES)))
            assert len(issued) == DOWN_LEASES
            # With the leases the steps above left (the kept row's writer and reader).
            mount = running.outputs["database_mount"]
            outstanding = len(leases_left(running.admin(), mount))
            assert DOWN_LEASES <= outstanding <= DOWN_LEASES + 2
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
