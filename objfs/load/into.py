"""`objfs load --into PATH`: the scanned tree under a path of a served volume, through imgr.

A served volume can only change through imgr (it owns the inode table and
the leases), so this mode writes through iclient's filesystem library, as a
mount would, without a kernel: entries in inode order (a directory before
what it holds), then the extra names of hard-linked files, then every
directory's mode, owner and times (last, since adding entries changes
them). Every few thousand entries the library is fsynced and the job records
which entries are in the volume; a resumed run replaces what an interrupted
one created after its last record, and redoes the link and directory passes
(both are idempotent).
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import stat
import time

import msgpack
import trio

from iclient.api import ROOT_CONTEXT, ROOT_INODE, FsError
from iclient.fs import FileSystem
from layout.records import FileType
from objfs.copyin import Metadata, copy_data, set_metadata
from objfs.load.job import Job
from objfs.load.pack import Tally, open_source

log = logging.getLogger(__name__)

RECORD_EVERY = 2000  # entries between durable points
RECORD_SECONDS = 10.0


class PathTaken(Exception):
    """--into names something that is not an empty directory (or a file on the way)."""


class Into:
    def __init__(self, job: Job, source: bytes, fs: FileSystem, tally: Tally) -> None:
        self.job, self.source, self.fs, self.tally = job, source, fs, tally
        self.targets: dict[int, int] = {}  # source inode -> volume inode
        self.unrecorded: list[tuple[int, int]] = []
        self.recorded_at = time.monotonic()

    async def run(self, path: bytes, fresh: bool) -> None:
        top = await self._top(path, fresh)
        self.targets = await trio.to_thread.run_sync(self._recorded)
        self.targets[ROOT_INODE] = top
        todo = "inode > 1 AND target IS NULL AND failed IS NULL"
        for row in await trio.to_thread.run_sync(self._rows, todo):
            await self._entry(row)
        await self._record()
        for parent, name, inode in await trio.to_thread.run_sync(self._extra_links):
            if inode in self.targets:
                await self._link(inode, parent, bytes(name))
        # Children first: the source root's own metadata goes to PATH last.
        for row in reversed(await trio.to_thread.run_sync(self._rows, "type = 4")):
            await self._finish(self.targets[row["inode"]], row)
        await self.fs.fsync()

    async def _top(self, path: bytes, fresh: bool) -> int:
        """The directory at `path` (made if missing); PathTaken unless new and empty."""
        number = ROOT_INODE
        for name in [part for part in path.split(b"/") if part]:
            try:
                attributes = await self.fs.lookup(number, name)
            except FsError as exc:
                if exc.errno != errno.ENOENT:
                    raise
                attributes = await self.fs.mkdir(number, name, 0o755, ROOT_CONTEXT)
            if not stat.S_ISDIR(attributes.mode):
                raise PathTaken(
                    f"--into {os.fsdecode(path)}: {os.fsdecode(name)} is not a directory"
                )
            number = attributes.inode
        if fresh:
            async for _ in self.fs.readdir(number, None):
                raise PathTaken(f"--into {os.fsdecode(path)} is not empty")
        return number

    # --- the job's side (worker threads) ----------------------------------

    def _rows(self, where: str) -> list[sqlite3.Row]:
        db = self.job.db
        db.row_factory = sqlite3.Row
        return db.execute(f"SELECT * FROM inodes WHERE {where} ORDER BY inode").fetchall()

    def _recorded(self) -> dict[int, int]:
        return dict(
            self.job.db.execute("SELECT inode, target FROM inodes WHERE target IS NOT NULL")
        )

    def _extra_links(self) -> list[tuple[int, bytes, int]]:
        """(parent, name, inode) of every name but the first of hard-linked files."""
        return self.job.db.execute(
            "SELECT l.parent, l.name, l.inode FROM links AS l JOIN inodes USING (inode) "
            "WHERE inodes.failed IS NULL AND inodes.type != 4 AND EXISTS (SELECT 1 FROM links "
            "AS f WHERE f.inode = l.inode AND (f.parent, f.name) < (l.parent, l.name))"
        ).fetchall()

    # --- the volume's side ---------------------------------------------------

    async def _entry(self, row: sqlite3.Row) -> None:
        parent, name = self.job.db.execute(
            "SELECT parent, name FROM links WHERE inode = ? ORDER BY parent, name LIMIT 1",
            (row["inode"],),
        ).fetchone()
        where = self.targets[parent]
        try:
            number = await self._make(where, bytes(name), row)
        except FsError as exc:
            if exc.errno != errno.EEXIST:
                raise
            number = await self._replace(where, bytes(name), row)
        if number is None:
            return
        self.targets[row["inode"]] = number
        self.unrecorded.append((number, row["inode"]))
        self.tally.entries += 1
        if (
            len(self.unrecorded) >= RECORD_EVERY
            or time.monotonic() - self.recorded_at > RECORD_SECONDS
        ):
            await self._record()

    async def _replace(self, parent: int, name: bytes, row: sqlite3.Row) -> int | None:
        """An interrupted run made `name` after its last record: make it again."""
        found = await self.fs.lookup(parent, name)
        if row["type"] == FileType.DIRECTORY and stat.S_ISDIR(found.mode):
            return found.inode
        if stat.S_ISDIR(found.mode):
            await self.fs.rmdir(parent, name, ROOT_CONTEXT)
        else:
            await self.fs.unlink(parent, name, ROOT_CONTEXT)
        return await self._make(parent, name, row)

    async def _make(self, parent: int, name: bytes, row: sqlite3.Row) -> int | None:
        kind, mode, fs = FileType(row["type"]), row["mode"], self.fs
        if kind is FileType.DIRECTORY:
            return (await fs.mkdir(parent, name, mode, ROOT_CONTEXT)).inode
        if kind is FileType.SYMLINK:
            number = (await fs.symlink(parent, name, bytes(row["symlink"]), ROOT_CONTEXT)).inode
        elif kind is FileType.REGULAR:
            number = (await fs.create(parent, name, mode, ROOT_CONTEXT)).inode
            try:
                if not await self._data(number, row):
                    await fs.unlink(parent, name, ROOT_CONTEXT)
                    return None
            finally:
                await fs.release(number)
        else:
            kind_bits = int(kind) << 12
            number = (
                await fs.mknod(parent, name, kind_bits | mode, row["rdev"], ROOT_CONTEXT)
            ).inode
        await self._finish(number, row)
        return number

    async def _data(self, number: int, row: sqlite3.Row) -> bool:
        """Copy the file's data; False (the entry named as skipped) if it cannot be read."""
        path = os.path.join(self.source, row["path"])
        try:
            fd = await trio.to_thread.run_sync(open_source, path)
        except OSError as exc:
            await trio.to_thread.run_sync(self._fail, row, f"not read: {exc.strerror}")
            return False
        try:
            await copy_data(self.fs, number, fd, row["size"], self._counted)
        except OSError as exc:
            await trio.to_thread.run_sync(self._fail, row, f"not read: {exc.strerror}")
            return False
        finally:
            os.close(fd)
        return True

    def _counted(self, data: bytes) -> None:
        self.tally.data_bytes += len(data)

    def _fail(self, row: sqlite3.Row, why: str) -> None:
        with self.job.transaction() as db:
            db.execute("UPDATE inodes SET failed = ? WHERE inode = ?", (why, row["inode"]))
            db.execute("INSERT INTO problems VALUES (?, ?)", (row["path"], why))
        self.tally.problems.append(f"{os.fsdecode(row['path'])}: {why}")

    async def _finish(self, number: int, row: sqlite3.Row) -> None:
        xattrs = msgpack.unpackb(row["xattrs"]) if row["xattrs"] else ()
        meta = Metadata(row["mode"], row["uid"], row["gid"], row["atime_ns"], row["mtime_ns"],
                        tuple((name, value) for name, value in xattrs))  # fmt: skip
        await set_metadata(self.fs, number, meta)

    async def _link(self, inode: int, parent: int, name: bytes) -> None:
        target, where = self.targets[inode], self.targets[parent]
        try:
            await self.fs.link(target, where, name, ROOT_CONTEXT)
        except FsError as exc:
            if exc.errno != errno.EEXIST:
                raise
            if (await self.fs.lookup(where, name)).inode != target:
                await self.fs.unlink(where, name, ROOT_CONTEXT)
                await self.fs.link(target, where, name, ROOT_CONTEXT)

    async def _record(self) -> None:
        """A durable point: what the volume holds is in a checkpoint, then in the job."""
        await self.fs.fsync()
        done, self.unrecorded = self.unrecorded, []
        await trio.to_thread.run_sync(self._write_targets, done)
        self.recorded_at = time.monotonic()

    def _write_targets(self, done: list[tuple[int, int]]) -> None:
        with self.job.transaction() as db:
            db.executemany("UPDATE inodes SET target = ? WHERE inode = ?", done)
