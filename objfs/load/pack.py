"""Packing the scanned tree into segments: file data, then payload pages and heads.

Inodes go in number order, all files (and the other non-directories) first,
the directories last, so a directory is written knowing which of its
entries could not be read. A file's data runs (holes are skipped: they
read as zeros) are appended in pieces that fill each segment to its target
size; its extent map and head follow its last piece. Everything one segment
receives is recorded in one transaction of the job database that is
committed when the segment is sealed, just before it is handed to the
uploaders; a crash loses only the unsealed segment, which the next run
packs again.

Runs in one worker thread (`Packer.run`); `rebuild` makes a recorded
segment's bytes again from the source, for a resumed load whose upload of
it never finished.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

from layout.records import FileType
from layout.segment import Segment
from objfs.load.heads import Heads
from objfs.load.job import Job

log = logging.getLogger(__name__)

SEGMENT_BYTES = 32 << 20
MIN_PIECE = 64 << 10  # a fuller segment is sealed rather than given a smaller piece
SPARSE_FROM = 1 << 20  # smaller files are read whole, holes and all
READ_BYTES = 8 << 20  # the most one read asks for
BATCH = 1000  # inode rows fetched at a time
_ZEROS = bytes(1 << 20)


class SourceChanged(Exception):
    """A recorded segment can no longer be made again: the source changed since."""


@dataclass(frozen=True, slots=True)
class Sealed:
    number: int
    data: bytes | bytearray  # a sealed segment's bytes, never changed again


@dataclass
class Tally:
    """What the packer did, for the progress display (read from another thread)."""

    entries: int = 0
    data_bytes: int = 0
    problems: list[str] = field(default_factory=list)


def digest(data: bytes | bytearray) -> str:
    return xxhash.xxh3_64_hexdigest(data)


def open_source(path: bytes) -> int:
    """A read-only fd that leaves the file's atime alone where we may ask for that."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(path, flags | os.O_NOATIME)
    except PermissionError:  # O_NOATIME needs ownership (or root)
        return os.open(path, flags)


def data_runs(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of the file's data; holes in between are not stored."""
    if size < SPARSE_FROM:
        yield 0, size
        return
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError:  # ENXIO: only a hole up to the end
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        offset = end


class Packer:
    def __init__(
        self,
        job: Job,
        source: Path,
        deliver: Callable[[Sealed], None],
        *,
        hashing: bool,
        tally: Tally,
        target: int = SEGMENT_BYTES,
    ) -> None:
        self.db = job.db
        self.db.row_factory = sqlite3.Row
        self.source, self.deliver, self.hashing = os.fsencode(source), deliver, hashing
        self.tally, self.target = tally, target
        self.heads = Heads(self.db)
        self.number = job.next_object()
        self.segment = Segment(self.number)
        self.meta_bytes = 0

    def run(self) -> None:
        """Pack every inode that has no head yet; seal the last segment."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for row in self._todo("type != ?"):
                if row["type"] == FileType.REGULAR and row["size"]:
                    self._file(row)
                else:
                    self._place(row)
            for row in self._todo("type = ?"):
                self._place(row)
            if len(self.segment):
                self._seal(last=True)
            else:
                self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def _todo(self, kind: str) -> Iterator[sqlite3.Row]:
        last = 0
        query = (
            f"SELECT * FROM inodes WHERE inode > ? AND {kind} AND head_object IS NULL "
            "AND failed IS NULL ORDER BY inode LIMIT ?"
        )
        while rows := self.db.execute(query, (last, int(FileType.DIRECTORY), BATCH)).fetchall():
            yield from rows
            last = rows[-1]["inode"]

    def _place(self, row: sqlite3.Row, file_hash: str | None = None) -> None:
        placed = self.heads.place(row, self.segment)
        self.meta_bytes += placed.meta_bytes
        where = placed.location
        self.db.execute(
            "UPDATE inodes SET head_object = ?, head_offset = ?, head_length = ?, hash = ? "
            "WHERE inode = ?",
            (where.object, where.offset, where.length, file_hash, row["inode"]),
        )
        self.tally.entries += 1

    def _file(self, row: sqlite3.Row) -> None:
        """Append the file's data (from where an earlier run stopped), then its head."""
        path = os.path.join(self.source, row["path"])
        try:
            fd = open_source(path)
        except OSError as exc:
            return self._fail(row, f"not read: {exc.strerror}")
        try:
            st = os.fstat(fd)
            if (st.st_size, st.st_mtime_ns) != (row["size"], row["mtime_ns"]):
                return self._fail(row, "changed since the scan")
            if not stat.S_ISREG(st.st_mode):
                return self._fail(row, "no longer a regular file")
            self._pieces(fd, row)
            file_hash = hash_file(fd, row["size"]) if self.hashing else None
        except OSError as exc:
            return self._fail(row, f"not read: {exc.strerror}")
        finally:
            os.close(fd)
        self._place(row, file_hash)

    def _pieces(self, fd: int, row: sqlite3.Row) -> None:
        inode, size = row["inode"], row["size"]
        (done,) = self.db.execute(
            "SELECT coalesce(max(file_offset + length), 0) FROM pieces WHERE inode = ?", (inode,)
        ).fetchone()
        for start, end in data_runs(fd, size):
            offset = max(start, done)
            while offset < end:
                room = self.target - len(self.segment)
                if room < MIN_PIECE:
                    self._seal()
                    room = self.target
                data = os.pread(fd, min(end - offset, room, READ_BYTES), offset)
                if not data:
                    raise OSError(0, "the file shrank while it was read")
                at = self.segment.append(data).offset
                self.db.execute(
                    "INSERT INTO pieces VALUES (?, ?, ?, ?, ?)",
                    (self.segment.number, at, inode, offset, len(data)),
                )
                offset += len(data)
                self.tally.data_bytes += len(data)

    def _fail(self, row: sqlite3.Row, why: str) -> None:
        self.db.execute("UPDATE inodes SET failed = ? WHERE inode = ?", (why, row["inode"]))
        self.db.execute("INSERT INTO problems VALUES (?, ?)", (row["path"], why))
        self.tally.problems.append(f"{os.fsdecode(row['path'])}: {why}")

    def _seal(self, last: bool = False) -> None:
        segment = self.segment
        segment.seal()
        data = segment.buffer  # final once sealed: handed on without a copy of 32 MiB
        self.db.execute(
            "INSERT INTO segments VALUES (?, ?, ?, ?, 0)",
            (segment.number, len(data), digest(data), self.meta_bytes),
        )
        self.db.execute("COMMIT")
        self.deliver(Sealed(segment.number, data))
        if not last:
            self.segment, self.meta_bytes = Segment(segment.number + 1), 0
            self.db.execute("BEGIN IMMEDIATE")


def hash_file(fd: int, size: int) -> str:
    """sha256 of the file's content as the manifest records it (holes read as zeros)."""
    hasher = hashlib.sha256()
    at = 0
    for start, end in data_runs(fd, size):
        _zeros(hasher, start - at)
        offset = start
        while offset < end:
            data = os.pread(fd, min(end - offset, READ_BYTES), offset)
            if not data:
                raise OSError(0, "the file shrank while it was read")
            hasher.update(data)
            offset += len(data)
        at = end
    _zeros(hasher, size - at)
    return hasher.hexdigest()


def hash_path(path: bytes, size: int) -> str:
    """hash_file of the file at `path`."""
    fd = open_source(path)
    try:
        return hash_file(fd, size)
    finally:
        os.close(fd)


def _zeros(hasher: hashlib._Hash, count: int) -> None:
    while count > 0:
        hasher.update(_ZEROS[: min(count, len(_ZEROS))])
        count -= len(_ZEROS)


def _read_again(path: bytes, offset: int, length: int) -> bytes:
    try:
        fd = open_source(path)
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)
    except OSError as exc:
        raise SourceChanged(f"{os.fsdecode(path)}: {exc.strerror}; start over with --new") from exc


def rebuild(job: Job, source: Path, number: int, size: int, expected: str) -> bytes:
    """The bytes of recorded segment `number`, made again; SourceChanged if they differ."""
    db = job.db
    db.row_factory = sqlite3.Row
    heads, root = Heads(db), os.fsencode(source)
    segment = Segment(number)
    items = [(p.object_offset, "piece", p) for p in job.pieces_in(number)]
    rows = db.execute("SELECT * FROM inodes WHERE head_object = ?", (number,)).fetchall()
    items += [(row["head_offset"], "head", row) for row in rows]
    for _, what, item in sorted(items, key=lambda i: i[0]):
        if what == "piece":
            query = "SELECT path FROM inodes WHERE inode = ?"
            path = os.path.join(root, db.execute(query, (item.inode,)).fetchone()[0])
            segment.append(_read_again(path, item.file_offset, item.length))
        else:
            heads.place(item, segment)
    segment.seal()
    data = segment.data
    if len(data) != size or digest(data) != expected:
        raise SourceChanged(
            f"segment {number} cannot be made again: files in the source changed since the "
            "load began; start over with --new"
        )
    return data
