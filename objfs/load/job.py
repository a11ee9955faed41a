"""A load's state on local disk: what the scan found and which segments hold what.

One SQLite database per state dir (`load.db`) records one job: the source
tree, the container, the new volume's id, every entry the scan found (with
the inode number it gets), and for every segment the loader built: its
number, size and digest, the file data pieces and the heads in it, and
whether it is uploaded. A segment is recorded before its upload starts, so
a resumed load knows every object it may have written: one that is in the
container is not sent again, one that is not is built again from the
record (`objfs.load.pack.rebuild`) and sent.

Only one thread writes (the packer's); readers on other threads open their
own connection. WAL mode keeps every committed transaction across a crash
of the process.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DB_NAME = "load.db"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE job (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE inodes (
    inode INTEGER PRIMARY KEY, type INTEGER NOT NULL, mode INTEGER NOT NULL,
    uid INTEGER NOT NULL, gid INTEGER NOT NULL,
    atime_ns INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL, rdev INTEGER NOT NULL, path BLOB NOT NULL,
    symlink BLOB, xattrs BLOB,
    head_object INTEGER, head_offset INTEGER, head_length INTEGER,
    hash TEXT, failed TEXT,
    target INTEGER  -- with --into: its inode in the volume, once durable there
);
CREATE TABLE links (
    parent INTEGER NOT NULL, name BLOB NOT NULL, inode INTEGER NOT NULL,
    PRIMARY KEY (parent, name)
) WITHOUT ROWID;
CREATE INDEX links_by_inode ON links (inode);
CREATE TABLE segments (
    number INTEGER PRIMARY KEY, size INTEGER NOT NULL, digest TEXT NOT NULL,
    meta_bytes INTEGER NOT NULL, uploaded INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE pieces (
    segment INTEGER NOT NULL, object_offset INTEGER NOT NULL, inode INTEGER NOT NULL,
    file_offset INTEGER NOT NULL, length INTEGER NOT NULL,
    PRIMARY KEY (segment, object_offset)
) WITHOUT ROWID;
CREATE INDEX pieces_by_inode ON pieces (inode, file_offset);
CREATE TABLE problems (path BLOB NOT NULL, message TEXT NOT NULL);
"""


class JobError(Exception):
    """The state dir cannot be used for this command (another job, damaged, newer)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """What makes two commands the same job."""

    source: str  # the absolute source path
    url: str  # the container URL without credentials
    volume: str
    excludes: tuple[str, ...] = ()
    into: str = ""  # a path in an existing volume, or "" for a new volume

    def describe(self) -> str:
        where = f"{self.url}:{self.into}" if self.into else self.url
        return f"the load of {self.source} into {where} (volume {self.volume})"


@dataclass(frozen=True, slots=True)
class Piece:
    """`length` bytes of an inode's file data at `file_offset`, stored in a segment."""

    inode: int
    file_offset: int
    length: int
    object_offset: int


class Job:
    """The job database. Methods that write commit before they return."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=60)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    @classmethod
    def exists(cls, state: Path) -> bool:
        return (state / DB_NAME).exists()

    @classmethod
    def create(cls, state: Path, identity: Identity, volume_id: bytes) -> Job:
        """A new job, replacing whatever the state dir held."""
        state.mkdir(parents=True, exist_ok=True)
        path = state / DB_NAME
        for stale in (path, path.with_name(DB_NAME + "-wal"), path.with_name(DB_NAME + "-shm")):
            stale.unlink(missing_ok=True)
        job = cls(path)
        job.db.executescript(_SCHEMA)
        values = {
            "schema": SCHEMA_VERSION,
            "source": identity.source,
            "url": identity.url,
            "volume": identity.volume,
            "excludes": list(identity.excludes),
            "into": identity.into,
            "volume_id": volume_id.hex(),
            "phase": "scan",
        }
        with job.transaction() as db:
            rows = [(key, json.dumps(value)) for key, value in values.items()]
            db.executemany("INSERT INTO job VALUES (?, ?)", rows)
        return job

    @classmethod
    def open(cls, state: Path) -> Job:
        job = cls(state / DB_NAME)
        try:
            schema = job.get("schema")
        except sqlite3.DatabaseError as exc:
            raise JobError(f"{job.path} is not a load state ({exc})") from None
        if schema != SCHEMA_VERSION:
            raise JobError(f"{job.path} is a load state of schema {schema}, not {SCHEMA_VERSION}")
        return job

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # --- the job record ---------------------------------------------------

    def get(self, key: str) -> object:
        row = self.db.execute("SELECT value FROM job WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set(self, key: str, value: object) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO job VALUES (?, ?)", (key, json.dumps(value)))

    @property
    def identity(self) -> Identity:
        excludes = self.get("excludes")
        assert isinstance(excludes, list)
        source, url, volume = (str(self.get(key)) for key in ("source", "url", "volume"))
        return Identity(source, url, volume, tuple(excludes), str(self.get("into")))

    @property
    def volume_id(self) -> bytes:
        return bytes.fromhex(str(self.get("volume_id")))

    @property
    def phase(self) -> str:
        return str(self.get("phase"))

    # --- segments -----------------------------------------------------------

    def segments(self, uploaded: bool | None = None) -> list[tuple[int, int, str]]:
        """(number, size, digest) of the recorded segments, by number."""
        where = "" if uploaded is None else f" WHERE uploaded = {int(uploaded)}"
        query = f"SELECT number, size, digest FROM segments{where} ORDER BY number"
        return self.db.execute(query).fetchall()

    def mark_uploaded(self, number: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE segments SET uploaded = 1 WHERE number = ?", (number,))

    def next_object(self) -> int:
        row = self.db.execute("SELECT max(number) FROM segments").fetchone()
        return (row[0] or 0) + 1

    def problems(self) -> list[tuple[bytes, str]]:
        """Entries named and skipped: (path relative to the source, why)."""
        return self.db.execute("SELECT path, message FROM problems ORDER BY rowid").fetchall()

    def pieces_in(self, segment: int) -> list[Piece]:
        rows = self.db.execute(
            "SELECT inode, file_offset, length, object_offset FROM pieces "
            "WHERE segment = ? ORDER BY object_offset",
            (segment,),
        )
        return [Piece(*row) for row in rows]

    def pieces_of(self, inode: int) -> list[tuple[int, Piece]]:
        """(segment, piece) of an inode's data recorded so far, by file offset."""
        rows = self.db.execute(
            "SELECT segment, inode, file_offset, length, object_offset FROM pieces "
            "WHERE inode = ? ORDER BY file_offset",
            (inode,),
        )
        return [(row[0], Piece(*row[1:])) for row in rows]
