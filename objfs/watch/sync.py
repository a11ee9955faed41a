"""Bringing one path of the volume in step with the local directory.

`Syncer.sync(path)` looks at the local entry and at what the state says the
volume holds, and does the least that makes them agree: nothing when size,
mtime, ctime and inode number are as recorded; only the metadata when the
content is the same (same size and mtime, or same hash); else the whole
entry, under a temporary name renamed over the old one. A path that is gone
locally is removed from the volume with --delete, else left there.

What the volume holds is recorded in the state only once it is durable
(`Recorder.durable`): until then a crash of the watcher loses the change in
the volume too, and the scan at the next start finds the path changed.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass, field, replace

import trio

from layout.records import FileType
from objfs.copyin import Metadata, local_xattrs
from objfs.load.pack import hash_file, hash_path, open_source
from objfs.manifest import content_hasher
from objfs.watch.state import Synced, WatchState, under
from objfs.watch.target import Target, split

log = logging.getLogger(__name__)


SMALL = 1 << 20  # files up to this size are read in one go


class Unsettled(Exception):
    """The file changed while it was uploaded: it goes again once it is quiet."""


@dataclass
class Recorder:
    """Changes made in the volume, recorded in the state once they are durable."""

    state: WatchState
    target: Target
    pending: dict[bytes, Synced | None] = field(default_factory=dict)  # None: removed
    uploads: int = 0  # files and entries put since the start
    data_bytes: int = 0

    def synced(self, path: bytes) -> Synced | None:
        if path in self.pending:
            return self.pending[path]
        return self.state.synced(path)

    async def durable(self) -> None:
        if not self.pending and not self.target.renamed_temps:
            return
        pending, self.pending = self.pending, {}
        await self.target.durable()
        self._record(pending)

    def _record(self, pending: dict[bytes, Synced | None]) -> None:
        for path, synced in pending.items():
            if synced is None:
                self.state.forget(path)
            else:
                self.state.record(path, synced)

    async def moved(self, old: bytes, new: bytes) -> None:
        """`old` was renamed to `new` in the volume: durable first, then so in the state."""
        await self.target.durable()
        pending, self.pending = self.pending, {}
        self.state.move(old, new)
        low, high = under(old)
        moved = {new + p[len(old) :] if p == old or low <= p < high else p: s
                 for p, s in pending.items()}  # fmt: skip
        self._record(moved)


class Syncer:
    def __init__(self, root: bytes, target: Target, recorder: Recorder, delete: bool) -> None:
        self.root, self.target, self.recorder, self.delete = root, target, recorder, delete

    def local(self, path: bytes) -> bytes:
        return os.path.join(self.root, path) if path else self.root

    async def sync(self, path: bytes, force: bool = False) -> list[bytes]:
        """Make the volume's `path` the local one; the directories whose metadata to set again
        (adding or removing an entry changes a directory's mtime)."""
        try:
            st, pairs = await trio.to_thread.run_sync(_look, self.local(path))
        except FileNotFoundError:
            return await self._gone(path)
        kind = FileType(stat.S_IFMT(st.st_mode) >> 12)
        known = self.recorder.synced(path)
        if not force and known is not None and _same(known, kind, st):
            return []
        meta = Metadata.of(st, pairs)
        record = Synced(int(kind), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        parents = [split(path)[0]] if path else []
        if kind is FileType.DIRECTORY:
            await self.target.put_dir(path, meta)
            parents = parents if known is None else []
        elif known is not None and known.type == kind and await self._content_kept(path, known, st):
            await self.target.set_metadata(path, meta)
            record = replace(record, hash=known.hash, target=known.target)
            parents = []
        elif kind is FileType.REGULAR:
            record = await self._file(path, st, meta, record)
        elif kind is FileType.SYMLINK:
            target = await trio.to_thread.run_sync(os.readlink, self.local(path))
            await self.target.put_symlink(path, target, meta)
            record = Synced(int(kind), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
                            target=target)  # fmt: skip
        else:
            await self.target.put_node(path, st.st_mode, st.st_rdev, meta)
        self.recorder.pending[path] = record
        self.recorder.uploads += 1
        return parents

    async def _file(
        self, path: bytes, st: os.stat_result, meta: Metadata, record: Synced
    ) -> Synced:
        if st.st_size <= SMALL:  # one hop to a thread reads it all
            data, after, digest = await trio.to_thread.run_sync(_read_small, self.local(path))
            await self.target.put_bytes(path, data, meta)
            self.recorder.data_bytes += len(data)
        else:
            after, digest = await self._stream(path, st, meta)
        if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            raise Unsettled(f"{os.fsdecode(path)} changed while it was uploaded")
        return replace(record, hash=digest)

    async def _stream(
        self, path: bytes, st: os.stat_result, meta: Metadata
    ) -> tuple[os.stat_result, str]:
        fd = await trio.to_thread.run_sync(open_source, self.local(path))
        try:

            def seen(data: bytes) -> None:
                self.recorder.data_bytes += len(data)

            await self.target.put_file(path, fd, st.st_size, meta, seen)
            after = await trio.to_thread.run_sync(os.fstat, fd)
            return after, await trio.to_thread.run_sync(hash_file, fd, st.st_size)
        finally:
            os.close(fd)

    async def _content_kept(self, path: bytes, known: Synced, st: os.stat_result) -> bool:
        """Whether only the metadata changed: a chmod, chown or xattr change moves the
        ctime alone; a touch or a rewrite with the same bytes keeps the content hash."""
        if (known.size, known.ino) != (st.st_size, st.st_ino):
            return False
        if known.mtime_ns == st.st_mtime_ns:
            return True
        if known.type != FileType.REGULAR or known.hash is None:
            return False
        return await trio.to_thread.run_sync(hash_path, self.local(path), st.st_size) == known.hash

    async def _gone(self, path: bytes) -> list[bytes]:
        if not self.delete or not path:
            return []
        await self.target.remove(path)
        self.recorder.pending[path] = None
        return [split(path)[0]]


def _look(path: bytes) -> tuple[os.stat_result, list[tuple[bytes, bytes]]]:
    st = os.lstat(path)
    return st, local_xattrs(path)


def _read_small(path: bytes) -> tuple[bytes, os.stat_result, str]:
    """A small file's bytes, its stat after the read, and its content hash."""
    fd = open_source(path)
    try:
        data = os.read(fd, SMALL + 1)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    hasher = content_hasher()
    hasher.update(data)
    return data, after, hasher.hexdigest()


def _same(known: Synced, kind: FileType, st: os.stat_result) -> bool:
    return (known.type, known.size, known.mtime_ns, known.ctime_ns, known.ino) == (
        int(kind), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)  # fmt: skip
