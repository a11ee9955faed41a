"""What the watcher knows across restarts: what each path was when it last reached the volume.

One SQLite database per watch (`watch.db` in the state dir): the local
directory and volume path it serves, a row per synced path (type, size,
mtime, ctime, inode number, content hash, symlink target), the paths whose
sync failed (attempts, last error, when to try again) and the temporary
names it created in the volume, so a restart after a crash removes those.
A path is `bytes`, relative to the watched directory, `/`-separated.

Small local transactions on the event loop's thread: in WAL mode a commit
does not wait for the disk, and a crash of the process loses none.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DB_NAME = "watch.db"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS synced (
    path BLOB PRIMARY KEY, type INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, ino INTEGER NOT NULL,
    hash TEXT, target BLOB
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS failures (
    path BLOB PRIMARY KEY, attempts INTEGER NOT NULL, error TEXT NOT NULL,
    first REAL NOT NULL, next_try REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS temps (path BLOB PRIMARY KEY) WITHOUT ROWID;
"""


class StateError(Exception):
    """The state dir belongs to another watch."""


@dataclass(frozen=True, slots=True)
class Synced:
    type: int  # layout.records.FileType
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    hash: str | None = None  # sha256 of a file's content
    target: bytes | None = None  # a symlink's


@dataclass(frozen=True, slots=True)
class Failure:
    path: bytes
    attempts: int
    error: str
    first: float  # time.time() of the first failure
    next_try: float


def under(path: bytes) -> tuple[bytes, bytes]:
    """The key range of everything below directory `path` ('0' sorts right after '/')."""
    return path + b"/", path + b"0"


class WatchState:
    def __init__(self, state: Path) -> None:
        state.mkdir(parents=True, exist_ok=True)
        self.path = state / DB_NAME
        # The scan reads it from a worker thread; sqlite serializes the calls.
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    def claim(self, source: str, target: str) -> None:
        """Make this the state of the watch of `source` into `target`; StateError if it is
        another watch's."""
        identity = {"source": source, "target": target}
        found = dict(self.db.execute("SELECT key, value FROM meta"))
        if found and found != identity:
            self.db.close()
            raise StateError(
                f"{self.path} is the state of the watch of {found['source']} into "
                f"{found['target']}; give this one its own --state"
            )
        self.db.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)", identity.items())

    def close(self) -> None:
        self.db.close()

    # --- synced paths -------------------------------------------------------

    def synced(self, path: bytes) -> Synced | None:
        row = self.db.execute(
            "SELECT type, size, mtime_ns, ctime_ns, ino, hash, target FROM synced WHERE path = ?",
            (path,),
        ).fetchone()
        return None if row is None else Synced(*row)

    def all_synced(self) -> Iterator[tuple[bytes, Synced]]:
        rows = self.db.execute(
            "SELECT path, type, size, mtime_ns, ctime_ns, ino, hash, target FROM synced"
        ).fetchall()
        for path, *fields in rows:
            yield path, Synced(*fields)

    def record(self, path: bytes, synced: Synced) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO synced VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (path, synced.type, synced.size, synced.mtime_ns, synced.ctime_ns, synced.ino,
             synced.hash, synced.target),
        )  # fmt: skip

    def forget(self, path: bytes) -> None:
        """`path` and everything below it are no longer in the volume."""
        low, high = under(path)
        self.db.execute(
            "DELETE FROM synced WHERE path = ? OR (path >= ? AND path < ?)", (path, low, high)
        )

    def move(self, old: bytes, new: bytes) -> None:
        """`old` (and what is below it) is now `new` in the volume."""
        low, high = under(old)
        rows = self.db.execute(
            "SELECT path FROM synced WHERE path = ? OR (path >= ? AND path < ?)", (old, low, high)
        ).fetchall()
        self.db.execute("BEGIN")
        self.forget(new)
        for (path,) in rows:
            self.db.execute(
                "UPDATE synced SET path = ? WHERE path = ?", (new + path[len(old) :], path)
            )
        self.db.execute("COMMIT")

    # --- failures -----------------------------------------------------------

    def failed(self, path: bytes, error: str, delay: float) -> Failure:
        now = time.time()
        old = self.db.execute(
            "SELECT attempts, first FROM failures WHERE path = ?", (path,)
        ).fetchone()
        attempts, first = (old[0] + 1, old[1]) if old else (1, now)
        failure = Failure(path, attempts, error, first, now + delay)
        self.db.execute(
            "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)",
            (path, attempts, error, first, failure.next_try),
        )
        return failure

    def attempts(self, path: bytes) -> int:
        """How often `path` failed in a row so far."""
        row = self.db.execute("SELECT attempts FROM failures WHERE path = ?", (path,)).fetchone()
        return row[0] if row else 0

    def succeeded(self, path: bytes) -> None:
        self.db.execute("DELETE FROM failures WHERE path = ?", (path,))

    def failures(self) -> list[Failure]:
        rows = self.db.execute(
            "SELECT path, attempts, error, first, next_try FROM failures ORDER BY path"
        )
        return [Failure(*row) for row in rows]

    # --- temporary names in the volume ----------------------------------------

    def add_temp(self, path: bytes) -> None:
        self.db.execute("INSERT OR IGNORE INTO temps VALUES (?)", (path,))

    def drop_temp(self, path: bytes) -> None:
        self.db.execute("DELETE FROM temps WHERE path = ?", (path,))

    def temps(self) -> list[bytes]:
        return [path for (path,) in self.db.execute("SELECT path FROM temps")]
