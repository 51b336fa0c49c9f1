"""A backup's file: its name, its encryption, and what a restore refuses to overwrite (pure; no
server, no stack; what a target restores, in which order, is its own: stacks/backups.py). `toolchain/backup.py` makes and restores them.

The file, one per backup, mode 0600:

    MAGIC                                   b"DBCREDS-BACKUP\\n"
    header length (4 bytes, big-endian)     then the header: JSON, in clear, authenticated
    chunks, each:
      final flag (1 byte: 1 on the last)
      ciphertext length (4 bytes)
      AES-256-GCM ciphertext and tag of up to CHUNK_BYTES of the payload

The key is scrypt's of the stack's passphrase (the file `PULUMI_CONFIG_PASSPHRASE_FILE` names: the
secret the state already needs) with the header's salt. Chunk i's nonce is the header's 8-byte
prefix and i; its associated data the header's digest, i and the final flag: a chunk moved,
dropped, or the file cut short fails. The header's `key_check` (other bytes of the same scrypt
output, saying nothing of the key) tells a wrong passphrase from a damaged file.

The payload is a gzip'd tar of PARTS: the manifest, the state's export (`pulumi stack export`: its
secrets stay encrypted by the stack's passphrase), OpenBao's raft snapshot and `pg_dumpall`'s dump.
"""

import base64
import datetime
import hashlib
import hmac
import json
import os
import struct
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from stacks.backups import DATABASE_DUMP, RAFT_SNAPSHOT

MAGIC = b"DBCREDS-BACKUP\n"
FORMAT_VERSION = 1
CHUNK_BYTES = 1 << 20
#: scrypt's cost: 32 MiB and about a tenth of a second here, once per backup or restore.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 15, 8, 1
SUFFIX = ".dbcreds-backup"

#: What a backup holds, by file name in its payload.
MANIFEST = "manifest.json"
STATE = "state.json"
PARTS = (MANIFEST, STATE, RAFT_SNAPSHOT, DATABASE_DUMP)


class BackupFileError(RuntimeError):
    pass


class WrongPassphrase(BackupFileError):
    pass


def backup_name(stack: str, now: datetime.datetime) -> str:
    """`<stack>-<UTC time>.dbcreds-backup`: names sort by time, as rotate-audit's moved logs do."""
    return f"{stack}-{now.astimezone(datetime.timezone.utc):%Y%m%dT%H%M%S.%fZ}{SUFFIX}"


def backup_folder(stack: str, setting: str, root: Path) -> Path:
    """Where backups go: BACKUP_DIR when set (relative: to the checkout), else .data/backups/<stack>."""
    return (root / setting).resolve() if setting.strip() else root / ".data" / "backups" / stack


def passphrase_of(path: str) -> bytes:
    """The passphrase in the file the environment names (as toolchain/env.py checks it: not empty)."""
    text = Path(path).read_text().strip()
    if not text:
        raise BackupFileError(f"PULUMI_CONFIG_PASSPHRASE_FILE={path}: the file is empty")
    return text.encode()


def _derive(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> tuple[bytes, bytes]:
    """The AES key and the key check, from one scrypt output."""
    out = Scrypt(salt=salt, length=64, n=n, r=r, p=p).derive(passphrase)
    return out[:32], out[32:]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def new_header(stack: str, created: str, salt: bytes, nonce_prefix: bytes, key_check: bytes,
               n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> dict:
    return {"format": "dbcreds-backup", "version": FORMAT_VERSION, "stack": stack, "created": created,
            "cipher": "AES-256-GCM", "chunk_bytes": CHUNK_BYTES,
            "kdf": {"name": "scrypt", "salt": _b64(salt), "n": n, "r": r, "p": p},
            "nonce_prefix": _b64(nonce_prefix), "key_check": _b64(key_check)}


def _chunk_nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


def _chunk_aad(header_digest: bytes, index: int, final: bool) -> bytes:
    return header_digest + struct.pack(">IB", index, int(final))


class EncryptingWriter:
    """A file-like object that writes the backup's framing to `out`: the header at once, then the
    payload written to it in chunks; close() writes the final chunk (without it the file is truncated)."""

    def __init__(self, out: BinaryIO, passphrase: bytes, stack: str, created: str,
                 n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P):
        salt, self._prefix = os.urandom(16), os.urandom(8)
        key, check = _derive(passphrase, salt, n, r, p)
        self._aead, self._out = AESGCM(key), out
        header = json.dumps(new_header(stack, created, salt, self._prefix, check, n, r, p), sort_keys=True).encode()
        out.write(MAGIC + struct.pack(">I", len(header)) + header)
        self._digest = hashlib.sha256(MAGIC + header).digest()
        self._buffer, self._index, self.closed = bytearray(), 0, False

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) > CHUNK_BYTES:
            self._emit(bytes(self._buffer[:CHUNK_BYTES]), final=False)
            del self._buffer[:CHUNK_BYTES]
        return len(data)

    def _emit(self, plain: bytes, final: bool) -> None:
        if self._index == 0xFFFFFFFF:
            raise BackupFileError("a backup holds at most 2^32 chunks")
        sealed = self._aead.encrypt(_chunk_nonce(self._prefix, self._index), plain,
                                    _chunk_aad(self._digest, self._index, final))
        self._out.write(struct.pack(">BI", int(final), len(sealed)) + sealed)
        self._index += 1

    def close(self) -> None:
        if not self.closed:
            self._emit(bytes(self._buffer), final=True)
            self._buffer.clear()
            self.closed = True


def _read_exactly(source: BinaryIO, size: int, what: str) -> bytes:
    data = source.read(size)
    if len(data) != size:
        raise BackupFileError(f"the file ends inside {what}: it is truncated")
    return data


def read_header(source: BinaryIO) -> tuple[dict, bytes]:
    """The header, and its digest (the chunks' associated data)."""
    if source.read(len(MAGIC)) != MAGIC:
        raise BackupFileError("not a dbcreds backup (its first bytes are not the format's)")
    (length,) = struct.unpack(">I", _read_exactly(source, 4, "the header"))
    raw = _read_exactly(source, length, "the header")
    try:
        header = json.loads(raw)
    except ValueError:
        raise BackupFileError("its header is not JSON: the file is damaged") from None
    if header.get("version") != FORMAT_VERSION:
        raise BackupFileError(f"format version {header.get('version')!r}: this reads version {FORMAT_VERSION}")
    return header, hashlib.sha256(MAGIC + raw).digest()


class DecryptingReader:
    """A file-like object that reads a backup's payload back, failing on a wrong passphrase (named as
    such), a chunk altered or moved, or a file cut short."""

    def __init__(self, source: BinaryIO, passphrase: bytes):
        self.header, self._digest = read_header(source)
        kdf = self.header["kdf"]
        key, check = _derive(passphrase, base64.b64decode(kdf["salt"]), kdf["n"], kdf["r"], kdf["p"])
        if not hmac.compare_digest(check, base64.b64decode(self.header["key_check"])):
            raise WrongPassphrase("the passphrase does not decrypt this backup: it was made with another "
                                  "passphrase (another checkout's, or the team's file)")
        self._aead, self._source = AESGCM(key), source
        self._prefix = base64.b64decode(self.header["nonce_prefix"])
        self._buffer, self._index, self._ended = b"", 0, False

    def _next_chunk(self) -> None:
        flag = self._source.read(5)
        if len(flag) < 5:
            raise BackupFileError(f"the file ends before its last chunk (after {self._index}): it is truncated")
        final, length = struct.unpack(">BI", flag)
        sealed = _read_exactly(self._source, length, f"chunk {self._index}")
        try:
            self._buffer += self._aead.decrypt(_chunk_nonce(self._prefix, self._index), sealed,
                                               _chunk_aad(self._digest, self._index, bool(final)))
        except Exception:  # noqa: BLE001 - cryptography's InvalidTag: the chunk is not what was written
            raise BackupFileError(f"chunk {self._index} does not authenticate: the file was altered or "
                                  "damaged") from None
        self._index += 1
        if final:
            if self._source.read(1):
                raise BackupFileError("bytes follow the last chunk: the file was altered")
            self._ended = True

    def read(self, size: int = -1) -> bytes:
        while not self._ended and (size < 0 or len(self._buffer) < size):
            self._next_chunk()
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def overwrite_refusal(stack: str, running: list[str], data_folders: list[str], resources: int) -> str:
    """Why a restore would overwrite something of the stack (empty when it would not): its running
    servers, its servers' data folders, its state's resources."""
    what = [f"running server(s): {', '.join(running)}"] if running else []
    what += [f"data folder(s): {', '.join(data_folders)}"] if data_folders else []
    what += [f"its state's {resources} resource(s)"] if resources else []
    if not what:
        return ""
    return (f"stack {stack!r} is not empty; a restore would overwrite its {'; '.join(what)}. "
            "FORCE=yes restores over them (the servers are stopped and their data replaced)")


def parse_restore_from(raw: str) -> Path:
    """FROM: the backup file to restore, which must exist."""
    if not raw.strip():
        raise BackupFileError("FROM is not set: give the backup file to restore (make restore STACK=… FROM=<file>)")
    path = Path(raw).expanduser()
    if not path.is_file():
        raise BackupFileError(f"FROM={raw}: no such file")
    return path


def parse_force(raw: str) -> bool:
    """FORCE: `yes` restores over a stack that is not empty; empty: refuse; anything else is a mistake."""
    if raw not in ("", "yes"):
        raise BackupFileError(f"FORCE={raw!r}: `yes` restores over the stack's servers and state, or leave it unset")
    return raw == "yes"


def human_size(size: int) -> str:
    """A size as an operator reads it: 512 B, 12.3 kB, 4.5 MB."""
    if size < 1000:
        return f"{size} B"
    for unit in ("kB", "MB", "GB"):
        size /= 1000
        if size < 1000 or unit == "GB":
            break
    return f"{size:.1f} {unit}"
