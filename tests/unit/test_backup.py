"""`make backup` and `make restore` (toolchain/backup.py, toolchain/backup_file.py): file names, the
encryption's framing, what a restore does in which order and what it refuses, read before anything
is touched."""

import datetime
import io
import json
import os
import struct

import pytest

from toolchain import backup_file
from stacks.backups import (SECRET_SIGNATURE, BackupError, restore_steps, server_outputs, unexpected_load_errors,
                            unwrap_secrets)
from toolchain.backup_file import (
    MAGIC,
    BackupFileError,
    DecryptingReader,
    EncryptingWriter,
    WrongPassphrase,
    backup_folder,
    backup_name,
    human_size,
    overwrite_refusal,
    parse_force,
    parse_restore_from,
)

#: scrypt at a cost the tests can pay many times (the product's is in the header it writes).
CHEAP = {"n": 1 << 10, "r": 8, "p": 1}
PASSPHRASE = b"correct horse battery staple"


def encrypted(payload: bytes, passphrase: bytes = PASSPHRASE) -> bytes:
    out = io.BytesIO()
    writer = EncryptingWriter(out, passphrase, "dev", "2026-12-06T16:00:00+00:00", **CHEAP)
    for start in range(0, len(payload), 300_000):  # Written in pieces, as tarfile does.
        writer.write(payload[start:start + 300_000])
    writer.close()
    return out.getvalue()


def decrypted(data: bytes, passphrase: bytes = PASSPHRASE) -> bytes:
    return DecryptingReader(io.BytesIO(data), passphrase).read()


def chunks(data: bytes) -> tuple[bytes, list[bytes]]:
    """The file's header bytes and its chunks (flag, length and ciphertext each)."""
    (length,) = struct.unpack(">I", data[len(MAGIC):len(MAGIC) + 4])
    at = len(MAGIC) + 4 + length
    head, found = data[:at], []
    while at < len(data):
        (size,) = struct.unpack(">I", data[at + 1:at + 5])
        found.append(data[at:at + 5 + size])
        at += 5 + size
    return head, found


PAYLOAD = os.urandom(backup_file.CHUNK_BYTES * 2 + 12345)


def test_a_payload_of_several_chunks_comes_back_whole():
    data = encrypted(PAYLOAD)
    assert len(chunks(data)[1]) == 3
    assert decrypted(data) == PAYLOAD
    assert PAYLOAD[:64] not in data


def test_read_in_pieces_as_tarfile_does():
    reader = DecryptingReader(io.BytesIO(encrypted(PAYLOAD)), PASSPHRASE)
    pieces = []
    while piece := reader.read(10_240):
        pieces.append(piece)
    assert b"".join(pieces) == PAYLOAD


def test_an_empty_payload_is_one_final_chunk():
    data = encrypted(b"")
    assert len(chunks(data)[1]) == 1 and decrypted(data) == b""


def test_the_header_says_how_to_derive_the_key_and_holds_nothing_secret():
    data = encrypted(b"x")
    header = DecryptingReader(io.BytesIO(data), PASSPHRASE).header
    assert header["stack"] == "dev" and header["cipher"] == "AES-256-GCM"
    assert header["kdf"]["name"] == "scrypt" and header["kdf"]["n"] == CHEAP["n"]
    assert PASSPHRASE not in data


def test_two_backups_of_the_same_bytes_differ():
    assert encrypted(b"same") != encrypted(b"same")


def test_a_wrong_passphrase_is_named_as_such():
    with pytest.raises(WrongPassphrase, match="passphrase does not decrypt this backup"):
        decrypted(encrypted(b"secret"), b"another passphrase")


def test_a_file_cut_after_a_chunk_is_truncated():
    head, found = chunks(encrypted(PAYLOAD))
    with pytest.raises(BackupFileError, match="truncated"):
        decrypted(head + b"".join(found[:-1]))


def test_a_file_cut_inside_a_chunk_is_truncated():
    data = encrypted(PAYLOAD)
    with pytest.raises(BackupFileError, match="truncated"):
        decrypted(data[:-10])


def test_an_altered_byte_fails_naming_its_chunk():
    head, found = chunks(encrypted(PAYLOAD))
    second = bytearray(found[1])
    second[100] ^= 1
    with pytest.raises(BackupFileError, match="chunk 1 does not authenticate"):
        decrypted(head + found[0] + bytes(second) + found[2])


def test_chunks_swapped_or_dropped_fail():
    head, (first, second, last) = chunks(encrypted(PAYLOAD))
    with pytest.raises(BackupFileError, match="chunk 0 does not authenticate"):
        decrypted(head + second + first + last)
    with pytest.raises(BackupFileError, match="chunk 1 does not authenticate"):
        decrypted(head + first + last)


def test_a_chunk_flagged_final_early_fails():
    head, (first, second, last) = chunks(encrypted(PAYLOAD))
    with pytest.raises(BackupFileError, match="chunk 0 does not authenticate"):
        decrypted(head + b"\x01" + first[1:])


def test_an_altered_header_fails():
    data = encrypted(b"payload")
    changed = data.replace(b'"stack": "dev"', b'"stack": "prd"', 1)
    assert changed != data
    with pytest.raises(BackupFileError, match="chunk 0 does not authenticate"):
        decrypted(changed)


def test_bytes_after_the_last_chunk_fail():
    with pytest.raises(BackupFileError, match="bytes follow the last chunk"):
        decrypted(encrypted(b"payload") + b"x")


def test_a_file_that_is_no_backup_is_named_so():
    with pytest.raises(BackupFileError, match="not a dbcreds backup"):
        decrypted(b"PK\x03\x04 a zip file")


def test_a_later_format_version_is_refused():
    header = json.dumps({"version": 2}).encode()
    with pytest.raises(BackupFileError, match="format version 2"):
        decrypted(MAGIC + struct.pack(">I", len(header)) + header)


def test_names_carry_the_stack_and_the_utc_time_and_sort_by_it():
    paris = datetime.timezone(datetime.timedelta(hours=1))
    earlier = backup_name("dev", datetime.datetime(2026, 12, 6, 17, 5, 9, 123, tzinfo=paris))
    later = backup_name("dev", datetime.datetime(2026, 12, 6, 16, 5, 10, tzinfo=datetime.timezone.utc))
    assert earlier == "dev-20261206T160509.000123Z.dbcreds-backup"
    assert sorted([later, earlier]) == [earlier, later]


def test_backups_go_under_the_checkout_unless_told(tmp_path):
    assert backup_folder("dev", "", tmp_path) == tmp_path / ".data" / "backups" / "dev"
    assert backup_folder("dev", "  ", tmp_path) == tmp_path / ".data" / "backups" / "dev"
    assert backup_folder("dev", "/srv/backups", tmp_path) == tmp_path.joinpath("/srv/backups")
    assert backup_folder("dev", "kept", tmp_path) == tmp_path / "kept"


def test_a_single_shamir_server_is_restored_state_first_then_postgres_then_openbao_then_up():
    assert [s.name for s in restore_steps(1, "shamir", stop_first=False)] == [
        "state", "postgres", "openbao", "unseal", "up"]
    assert "unseal keys" in restore_steps(1, "shamir", stop_first=False)[3].what


def test_a_cluster_over_running_servers_stops_them_first_and_joins_its_other_nodes_last():
    steps = restore_steps(3, "static", stop_first=True)
    assert [s.name for s in steps] == ["stop", "state", "postgres", "openbao", "unseal", "join", "up"]
    assert "static seal" in steps[4].what and "other 2 node(s)" in steps[5].what


def test_an_empty_stack_is_restored_without_asking():
    assert overwrite_refusal("dev", [], [], 0) == ""


def test_what_a_restore_would_overwrite_is_named():
    message = overwrite_refusal("dev", ["OpenBao (/d/openbao)"], ["/d/openbao", "/d/postgres"], 46)
    assert "stack 'dev'" in message and "running server(s): OpenBao (/d/openbao)" in message
    assert "data folder(s): /d/openbao, /d/postgres" in message and "46 resource(s)" in message
    assert "FORCE=yes" in message
    assert "running" not in overwrite_refusal("dev", [], ["/d/postgres"], 0)


def test_only_the_superuser_made_twice_is_an_expected_load_error():
    stderr = ('psql:/t/postgres.sql:14: ERROR:  role "postgres" already exists\n'
              "psql:/t/postgres.sql:20: NOTICE:  something\n")
    assert unexpected_load_errors(stderr) == []
    stderr += 'psql:/t/postgres.sql:40: ERROR:  database "app" already exists\n'
    assert unexpected_load_errors(stderr) == ['database "app" already exists']


def test_from_must_be_set_and_name_a_file(tmp_path):
    with pytest.raises(BackupFileError, match="FROM is not set"):
        parse_restore_from("")
    with pytest.raises(BackupFileError, match=f"FROM={tmp_path}/nowhere: no such file"):
        parse_restore_from(f"{tmp_path}/nowhere")
    with pytest.raises(BackupFileError, match="no such file"):
        parse_restore_from(str(tmp_path))  # A folder is no backup file.
    (tmp_path / "b").write_bytes(b"")
    assert parse_restore_from(str(tmp_path / "b")) == tmp_path / "b"


@pytest.mark.parametrize("raw", ["no", "YES", "1", "true"])
def test_force_is_yes_or_unset(raw):
    with pytest.raises(BackupFileError, match=f"FORCE={raw!r}"):
        parse_force(raw)


def test_force_yes_forces():
    assert parse_force("yes") is True and parse_force("") is False


def test_sizes_read_as_an_operator_reads_them():
    assert [human_size(n) for n in (0, 999, 1000, 12_345, 4_500_000, 7_000_000_000_000)] == [
        "0 B", "999 B", "1.0 kB", "12.3 kB", "4.5 MB", "7000.0 GB"]


def secret(value) -> dict:
    return {SECRET_SIGNATURE[0]: SECRET_SIGNATURE[1], "plaintext": json.dumps(value)}


def test_secrets_of_an_export_with_show_secrets_are_unwrapped_wherever_they_are():
    assert unwrap_secrets({"a": secret(["k1", "k2"]), "b": [secret("t")], "c": {"d": 1}}) == {
        "a": ["k1", "k2"], "b": ["t"], "c": {"d": 1}}


RESOURCES = [
    {"type": "pulumi-python:dynamic:Resource", "outputs": {"data_dir": "/d/openbao", "kind": "openbao"}},  # keeper
    {"type": "pulumi-python:dynamic/dbcreds:OpenBaoServer",
     "outputs": {"data_dir": "/d/openbao", "cert_pem": "C", "unseal_keys": secret(["key"])}},
    {"type": "pulumi-python:dynamic:Resource", "outputs": {"data_dir": "/d/postgres", "cert_pem": "P"}},
]


def test_a_server_is_found_by_its_data_folder_not_its_keeper():
    from pathlib import Path

    openbao = server_outputs(RESOURCES, Path("/d/openbao"), "pulumi-python:dynamic/dbcreds:OpenBaoServer")
    assert openbao["unseal_keys"] == ["key"]
    assert server_outputs(RESOURCES, Path("/d/postgres"))["cert_pem"] == "P"
    with pytest.raises(BackupError, match="no server resource for /d/elsewhere"):
        server_outputs(RESOURCES, Path("/d/elsewhere"))


@pytest.mark.parametrize("stack, target", [("k8s", "kubernetes"), ("prod", "kubernetes")])
def test_other_targets_are_refused_naming_theirs_and_why(stack, target):
    from toolchain.backup import unsupported
    from toolchain.policy_gate import stack_config

    refusal = unsupported(stack, stack_config(stack))
    assert refusal.startswith(f"stack {stack!r} runs on the {target} target: its servers are pods") and \
        "\n" not in refusal, refusal


def test_the_external_target_is_refused_saying_its_servers_are_its_operators():
    from types import SimpleNamespace

    from toolchain.backup import unsupported

    external = SimpleNamespace(target=SimpleNamespace(kind="external"))
    assert unsupported("ext", external) == ("stack 'ext' runs on the external target: its Vault and database are "
                                            "its operators', who back them up; the stack holds only its state and "
                                            "what it made in them")


@pytest.mark.parametrize("stack", ["dev", "staging", "docker"])
def test_the_local_stacks_can_be_backed_up(stack):
    from toolchain.backup import unsupported
    from toolchain.policy_gate import stack_config

    assert unsupported(stack, stack_config(stack)) == ""


def test_the_parts_packed_and_encrypted_come_back_as_they_were(tmp_path):
    from toolchain.backup import decrypt_parts, write_backup_file

    parts, back = tmp_path / "parts", tmp_path / "back"
    parts.mkdir()
    back.mkdir()
    contents = {part: os.urandom(2000) + part.encode() for part in backup_file.PARTS}
    contents[backup_file.MANIFEST] = json.dumps({"stack": "dev"}).encode()
    for part, data in contents.items():
        (parts / part).write_bytes(data)
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("the stack's passphrase\n")
    path = tmp_path / "dev.dbcreds-backup"
    write_backup_file(path, parts, b"the stack's passphrase", "dev", "now", **CHEAP)
    assert oct(path.stat().st_mode & 0o777) == "0o600" and not list(tmp_path.glob("*.partial"))
    assert decrypt_parts(path, str(passphrase), back) == {"stack": "dev"}
    assert {p.name: p.read_bytes() for p in back.iterdir()} == contents
    with pytest.raises(FileExistsError):  # Never over another backup.
        write_backup_file(path, parts, b"the stack's passphrase", "dev", "now", **CHEAP)
    passphrase.write_text("another")
    with pytest.raises(BackupError, match=f"FROM={path}: the passphrase does not decrypt this backup"):
        decrypt_parts(path, str(passphrase), back)


def test_a_docker_stack_is_restored_state_first_then_its_containers_then_postgres_then_openbao_then_up():
    from stacks import docker_target
    from toolchain.policy_gate import stack_config

    servers = docker_target.backups(stack_config("docker"))
    assert [s.name for s in servers.steps(stop_first=False)] == [
        "state", "servers", "postgres", "openbao", "unseal", "up"]
    steps = servers.steps(stop_first=True)
    assert steps[0].name == "stop" and "containers and volumes" in steps[0].what
    assert "unseal keys" in steps[5].what
