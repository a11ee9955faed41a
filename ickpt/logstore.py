"""LogStore: the default checkpoint store, an append-only log file replayed into memory.

File format
-----------
The file starts with the 8-byte magic ``MAGIC``, followed by records::

    length   4 bytes, big-endian: size of the payload
    digest   16 bytes: BLAKE2b-128 of (length || payload)
    payload  msgpack array [op, key, value, version]

``op`` is ``OP_PUT`` (key, value, version), ``OP_DELETE`` (key, None, version: the revision
the delete consumed) or ``OP_REVISION`` (None, None, revision: written first in a compacted
file so that the revisions of deleted keys are never reused).

Durability
----------
A mutation appends its record with one ``write`` and ``fsync``s the file before the
in-memory state changes and before the caller gets an answer; the file's creation and
every compaction (snapshot to ``PATH.compact``, fsync, rename over PATH) are made durable
by an fsync of the directory. Mutations are serialized by a lock, so at any moment at most
one record - the last - is not yet durable. A crash can therefore only damage the tail:
a partial or garbled last record that was never acknowledged. On open such a tail is
logged, truncated away and never replayed.

A bad record followed by a valid record cannot come from a crash (the valid record was
written after the bad one was fsynced): it is media or software corruption of data that
may have been acknowledged. Truncating there would silently drop acknowledged updates,
so opening fails with ``CorruptLogError`` naming both offsets; an operator decides
(restore the file, or open once with ``repair=True``, which truncates at the bad record
and logs every dropped record's offset as an error). The check "a valid record follows"
uses the digest, so garbage is accepted as a record only with probability 2**-128.

If a write or fsync fails the store stops accepting mutations (the file's state is no
longer known; Linux may have dropped the dirty pages): reopen it to recover.

One writer
----------
The replayed state lives in memory, so a second process appending to the same log would
make both wrong. An open store holds an exclusive ``flock`` on ``PATH.lock`` (not on the
log itself, which compaction replaces by a new file) until it is closed or its process
dies; opening a log that another store holds fails with ``LogInUse`` at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import struct
from pathlib import Path
from typing import BinaryIO

import msgpack
import trio

from ickpt.store import (
    CheckpointStore,
    Conflict,
    StoreError,
    check_key,
    check_value,
    check_version,
)
from objfs.durable import fsync_dir

log = logging.getLogger(__name__)

MAGIC = b"ICKPTLG1"
HEADER = struct.Struct(">I16s")
DIGEST_SIZE = 16
OP_PUT, OP_DELETE, OP_REVISION = 1, 2, 3
MAX_PAYLOAD = 80 * 1024  # a record with a 64 KiB value and a 1 KiB key fits easily
MIN_COMPACT_BYTES = 1024 * 1024
RECORD_OVERHEAD = HEADER.size + 16  # framing plus msgpack's own headers (approximate)


class CorruptLogError(StoreError):
    """The log is damaged before its tail: opening it could lose acknowledged data."""


class LogInUse(StoreError):
    """Another open store (in this or another process) holds the log."""


def _digest(length: bytes, payload: bytes) -> bytes:
    return hashlib.blake2b(length + payload, digest_size=DIGEST_SIZE).digest()


def encode_record(op: int, key: str | None, value: bytes | None, version: int) -> bytes:
    payload = msgpack.packb([op, key, value, version], use_bin_type=True)
    length = struct.pack(">I", len(payload))
    return length + _digest(length, payload) + payload


def _parse_at(data: bytes, offset: int) -> tuple[list, int] | None:
    """Decode the record at offset: (fields, end offset), or None if it is not valid."""
    end = offset + HEADER.size
    if end > len(data):
        return None
    length, digest = HEADER.unpack_from(data, offset)
    if length > MAX_PAYLOAD or end + length > len(data):
        return None
    payload = data[end : end + length]
    if _digest(data[offset : offset + 4], payload) != digest:
        return None
    try:
        fields = msgpack.unpackb(payload, raw=False)
    except ValueError:
        return None
    if not isinstance(fields, list) or len(fields) != 4:
        return None
    return fields, end + length


def _next_valid(data: bytes, offset: int) -> int | None:
    """Offset of the first valid record starting after offset, if any."""
    for start in range(offset + 1, len(data) - HEADER.size):
        # A record's payload is a 4-element msgpack array: cheap filter before the digest.
        if data[start + HEADER.size : start + HEADER.size + 1] == b"\x94":
            if _parse_at(data, start) is not None:
                return start
    return None


def _take_lock_file(path: Path) -> int:
    """An open descriptor holding the exclusive lock of the log at `path`."""
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except BaseException as exc:
        os.close(fd)
        if isinstance(exc, BlockingIOError):
            raise LogInUse(
                f"checkpoint log {path} is in use by another process "
                "(a running ickpt? pass --ickpt HOST:PORT)"
            ) from None
        raise


def _write_new_file(path: Path, content: bytes) -> None:
    """Atomically make path hold content, durably (tmp file, fsync, rename, fsync dir)."""
    tmp = path.with_name(path.name + ".compact")
    with open(tmp, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


class _State:
    """The replayed contents of a log: live keys and the store-wide revision."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[int, bytes]] = {}
        self.revision = 0
        self.live_bytes = 0

    def apply(self, fields: list) -> None:
        op, key, value, version = fields
        if op == OP_PUT:
            self._drop(key)
            self.items[key] = (version, bytes(value))
            self.live_bytes += _record_size(key, value)
        elif op == OP_DELETE:
            self._drop(key)
        elif op != OP_REVISION:
            raise ValueError(f"unknown record op {op!r}")
        self.revision = max(self.revision, version)

    def _drop(self, key: str) -> None:
        old = self.items.pop(key, None)
        if old is not None:
            self.live_bytes -= _record_size(key, old[1])

    def snapshot(self) -> bytes:
        parts = [MAGIC, encode_record(OP_REVISION, None, None, self.revision)]
        for key, (version, value) in self.items.items():
            parts.append(encode_record(OP_PUT, key, value, version))
        return b"".join(parts)


def _record_size(key: str, value: bytes) -> int:
    return RECORD_OVERHEAD + len(key.encode()) + len(value)


def _replay(path: Path, data: bytes, repair: bool) -> tuple[_State, int]:
    """Replay data into a state; return it and the offset where valid records end."""
    state, offset = _State(), len(MAGIC)
    while offset < len(data):
        parsed = _parse_at(data, offset)
        if parsed is None:
            _check_tail(path, data, offset, repair)
            break
        try:
            state.apply(parsed[0])
        except (ValueError, TypeError) as exc:
            raise CorruptLogError(f"{path}: undecodable record at offset {offset}: {exc}") from exc
        offset = parsed[1]
    return state, offset


def _check_tail(path: Path, data: bytes, offset: int, repair: bool) -> None:
    later = _next_valid(data, offset)
    if later is None:
        log.warning(
            "%s: torn or corrupt tail at offset %d (%d bytes): never acknowledged, truncated",
            path, offset, len(data) - offset,
        )  # fmt: skip
        return
    message = (
        f"{path}: corrupt record at offset {offset} is followed by a valid record at offset "
        f"{later}: records after the damage may have been acknowledged"
    )
    if not repair:
        raise CorruptLogError(message + "; refusing to open (restore the file or repair=True)")
    log.error("%s; repair=True: truncating at offset %d, dropping them", message, offset)


class LogStore(CheckpointStore):
    """A CheckpointStore kept in one append-only local log file (see the module docstring).

    Use ``store = await LogStore.open(path)``; the constructor alone does no I/O.
    """

    def __init__(self, path: str | os.PathLike, min_compact_bytes: int = MIN_COMPACT_BYTES) -> None:
        self.path = Path(path)
        self.min_compact_bytes = min_compact_bytes
        self._state = _State()
        self._file: BinaryIO | None = None
        self._lock_fd: int | None = None
        self._size = 0
        self._lock = trio.Lock()
        self._broken: str | None = None

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike,
        min_compact_bytes: int = MIN_COMPACT_BYTES,
        repair: bool = False,
    ) -> LogStore:
        store = cls(path, min_compact_bytes)
        await trio.to_thread.run_sync(store._load, repair)
        return store

    # ---------------------------------------------------------------- blocking I/O

    def _load(self, repair: bool) -> None:
        self._lock_fd = _take_lock_file(self.path)
        try:
            self._replay_file(repair)
        except BaseException:
            self._unlock()
            raise

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def _replay_file(self, repair: bool) -> None:
        self.path.with_name(self.path.name + ".compact").unlink(missing_ok=True)
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        if len(data) < len(MAGIC) and MAGIC.startswith(data):
            # Absent, or a creation that crashed before its rename: start empty.
            _write_new_file(self.path, MAGIC)
            data = MAGIC
        elif not data.startswith(MAGIC):
            raise CorruptLogError(f"{self.path}: not an ickpt log (bad magic {data[:8]!r})")
        self._state, end = _replay(self.path, data, repair)
        self._file = open(self.path, "r+b")
        if end < len(data):
            self._file.truncate(end)
            os.fsync(self._file.fileno())
        self._file.seek(end)
        self._size = end

    def _append(self, record: bytes) -> None:
        self._file.write(record)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._size += len(record)

    def _compact(self) -> None:
        snapshot = self._state.snapshot()
        _write_new_file(self.path, snapshot)
        self._file.close()
        self._file = open(self.path, "r+b")
        self._file.seek(0, os.SEEK_END)
        log.info("%s compacted: %d -> %d bytes", self.path, self._size, len(snapshot))
        self._size = len(snapshot)

    def _needs_compaction(self) -> bool:
        return self._size > max(self.min_compact_bytes, 4 * self._state.live_bytes)

    # ---------------------------------------------------------------- mutations

    async def _commit(self, fields: list) -> None:
        """Append a record durably, then apply it to memory; compact if the log is large."""
        if self._file is None:
            raise StoreError(f"{self.path}: store is closed")
        if self._broken is not None:
            raise StoreError(f"{self.path}: store unusable after an I/O error: {self._broken}")
        record = encode_record(*fields)
        try:
            # Not abandoned on cancel: the thread finishes and memory follows the file.
            await trio.to_thread.run_sync(self._append, record)
        except OSError as exc:
            self._broken = str(exc)
            raise StoreError(f"{self.path}: cannot append: {exc}") from exc
        self._state.apply(fields)
        if self._needs_compaction():
            try:
                await trio.to_thread.run_sync(self._compact)
            except OSError as exc:
                self._broken = str(exc)
                raise StoreError(f"{self.path}: compaction failed: {exc}") from exc

    def _check_current(self, key: str, expected_version: int) -> None:
        current = self._state.items.get(key)
        current_version = current[0] if current else 0
        if current_version != expected_version:
            raise Conflict(current_version)

    async def put(self, key: str, value: bytes, expected_version: int) -> int:
        check_key(key)
        check_value(value)
        check_version(expected_version)
        async with self._lock:
            self._check_current(key, expected_version)
            version = self._state.revision + 1
            await self._commit([OP_PUT, key, bytes(value), version])
            return version

    async def delete(self, key: str, expected_version: int) -> None:
        check_key(key)
        check_version(expected_version)
        async with self._lock:
            self._check_current(key, expected_version)
            if expected_version == 0:
                return  # deleting an absent key that is expected absent: nothing to do
            await self._commit([OP_DELETE, key, None, self._state.revision + 1])

    # ---------------------------------------------------------------- reads

    async def get(self, key: str) -> tuple[int, bytes] | None:
        check_key(key)
        await trio.lowlevel.checkpoint()
        return self._state.items.get(key)

    async def list(self, prefix: str = "") -> list[str]:
        await trio.lowlevel.checkpoint()
        return sorted(k for k in self._state.items if k.startswith(prefix))

    async def aclose(self) -> None:
        async with self._lock:
            if self._file is not None:
                await trio.to_thread.run_sync(self._file.close)
                self._file = None
            self._unlock()

    @property
    def file_size(self) -> int:
        return self._size
