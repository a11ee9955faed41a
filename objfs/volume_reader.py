"""A volume's entries as a manifest lists them, read without a mount.

From a checkpoint record: superblock -> inode table -> the root's head, then
every directory's entries in name order (so the entries come in manifest path
order), each entry's head, and every regular file's data through its extent
map (holes are zeros) to hash it. The data is read in ranged GETs of at most
PIECE bytes, FILES_AT_ONCE files at a time, while the walk goes on ahead;
the entries still come out in path order. A damaged or missing record is a
LayoutError naming where it lies (fsck says more).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass

import trio

from imgr.api import ROOT_INODE
from imgr.state import new_table
from layout.btree import BTree
from layout.codec import IntCodec, Location
from layout.errors import LayoutError
from layout.pagecache import PageCache
from layout.records import (
    Checkpoint,
    DirEntryCodec,
    DirNameCodec,
    Extent,
    ExtentCodec,
    FileType,
    InodeHead,
    Superblock,
)
from objfs.manifest import (
    DEVICES,
    ROOT,
    TYPES,
    Entry,
    child,
    content_hasher,
    hash_zeros,
    symlink_hash,
    xattrs_digest,
)
from objfs.objects import StoreReader
from objfs.storage import ObjectStore

FILES_AT_ONCE = 16  # files whose data is being read and hashed
PIECE = 4 << 20  # bytes of one ranged GET
THREAD_HASH = 1 << 20  # pieces this large are hashed in a worker thread
HEADS_AT_ONCE = 32  # a directory's inode heads read at once
LOOKAHEAD = 256  # entries walked ahead of the one being handed out
CACHE_BYTES = 32 << 20  # decoded B+tree pages kept


@asynccontextmanager
async def volume_entries(
    store: ObjectStore, record: Checkpoint, top: bytes = b""
) -> AsyncIterator[trio.MemoryReceiveChannel[Entry]]:
    """A channel of the entries of the volume (or of its directory `top`, a /-separated path
    from the root) in path order, relative to that directory, closed after the last.

    A failure while reading is raised here, never as an early end of the channel.
    """
    send, receive = trio.open_memory_channel[Entry](LOOKAHEAD)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_Reader(store, record).run, send, top)
        async with receive:
            yield receive
        nursery.cancel_scope.cancel()  # the consumer stopped early: so does the reader


class NoSuchPath(Exception):
    """The directory to read is not in the volume."""


@dataclass(slots=True, eq=False)  # eq=False: hashable by identity, a limiter's borrower
class _Pending:
    """An entry walked; a file's hash comes in later, then `done` is set."""

    entry: Entry
    done: trio.Event | None = None


class _Reader:
    table: BTree  # the inode table, once the superblock is read

    def __init__(self, store: ObjectStore, record: Checkpoint) -> None:
        self.reader = StoreReader(store)
        self.cache = PageCache(CACHE_BYTES)
        self.record = record
        self.files = trio.CapacityLimiter(FILES_AT_ONCE)
        # inode -> its first path, for inodes of several links (the walk is in path order)
        self.linked: dict[int, bytes] = {}

    async def run(self, send: trio.MemorySendChannel[Entry], top: bytes) -> None:
        walked, walking = trio.open_memory_channel[_Pending](LOOKAHEAD)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_hand_out, walking, send)
            async with walked:
                self.table = await self._table()
                start = await self._find(top)
                await self._walk(ROOT, start, walked, nursery)

    async def _find(self, top: bytes) -> InodeHead:
        """The head of the directory at `top`; NoSuchPath if there is none."""
        head = (await self._heads([(ROOT, ROOT_INODE)]))[0][1]
        for name in [part for part in top.split(b"/") if part]:
            if head.type is not FileType.DIRECTORY:
                raise NoSuchPath(f"{os.fsdecode(top)}: not a directory in the volume")
            tree = BTree(head.payload, self.reader, DirNameCodec(), DirEntryCodec(),
                         cache=self.cache)  # fmt: skip
            entry = await tree.get(name)
            if entry is None:
                raise NoSuchPath(f"{os.fsdecode(top)}: no such path in the volume")
            head = (await self._heads([(ROOT, entry.inode)]))[0][1]
        return head

    async def _table(self) -> BTree:
        where = f"superblock of checkpoint {self.record.sequence}"
        superblock = Superblock.decode(await self.reader.read(self.record.superblock), where)
        return new_table(superblock.inode_table, self.reader, self.cache)

    async def _walk(
        self,
        path: bytes,
        head: InodeHead,
        walked: trio.MemorySendChannel[_Pending],
        nursery: trio.Nursery,
    ) -> None:
        pending = _Pending(_entry(path, head, self._first_link(path, head)))
        if head.type is FileType.REGULAR:
            pending.done = trio.Event()
            await self.files.acquire_on_behalf_of(pending)
            nursery.start_soon(self._hash, pending, head)
        await walked.send(pending)
        if head.type is FileType.DIRECTORY:
            async with aclosing(self._children(path, head)) as children:
                async for heads in children:
                    for name, inode_head in heads:
                        await self._walk(name, inode_head, walked, nursery)

    def _first_link(self, path: bytes, head: InodeHead) -> bytes | None:
        if len(head.links) < 2 or head.type is FileType.DIRECTORY:
            return None
        first = self.linked.setdefault(head.inode, path)
        return None if first == path else first

    async def _children(
        self, path: bytes, head: InodeHead
    ) -> AsyncIterator[list[tuple[bytes, InodeHead]]]:
        """The directory's entries (path, head) in name order, a batch at a time."""
        tree = BTree(head.payload, self.reader, DirNameCodec(), DirEntryCodec(), cache=self.cache)
        batch: list[tuple[bytes, int]] = []
        async for name, entry in tree.items():
            batch.append((child(path, name), entry.inode))
            if len(batch) == HEADS_AT_ONCE:
                yield await self._heads(batch)
                batch = []
        if batch:
            yield await self._heads(batch)

    async def _heads(self, batch: list[tuple[bytes, int]]) -> list[tuple[bytes, InodeHead]]:
        heads: dict[int, InodeHead] = {}  # index in batch -> head

        async def one(i: int, inode: int) -> None:
            location = await self.table.get(inode)
            if location is None:
                raise LayoutError(f"inode {inode} is named in a directory but not in the table")
            head = InodeHead.decode(await self.reader.read(location), f"inode head of {inode}")
            if head.inode != inode:
                raise LayoutError(f"the inode table's entry {inode} leads to inode {head.inode}")
            heads[i] = head

        async with trio.open_nursery() as nursery:
            for i, (_, inode) in enumerate(batch):
                nursery.start_soon(one, i, inode)
        return [(path, heads[i]) for i, (path, _) in enumerate(batch)]

    async def _hash(self, pending: _Pending, head: InodeHead) -> None:
        assert pending.done is not None
        try:
            digest = await self._content_hash(head)
        finally:
            self.files.release_on_behalf_of(pending)
        pending.entry = dataclasses.replace(pending.entry, hash=digest)
        pending.done.set()  # not on failure: the entry is never handed out without its hash

    async def _content_hash(self, head: InodeHead) -> str:
        """sha256 of the file's bytes up to its size, holes and the tail as zeros."""
        hasher = content_hasher()
        done = 0  # bytes of the file hashed so far
        tree = BTree(head.payload, self.reader, IntCodec(), ExtentCodec(), cache=self.cache)
        async with aclosing(tree.items()) as extents:
            async for offset, extent in extents:
                if offset < done:
                    where = f"inode {head.inode}, file offset {offset}"
                    raise LayoutError("the extent overlaps the one before", where)
                length = min(extent.length, head.size - offset)
                if length <= 0:
                    break
                hash_zeros(hasher, offset - done)
                await self._hash_extent(hasher, extent, length)
                done = offset + length
        hash_zeros(hasher, head.size - done)
        return hasher.hexdigest()

    async def _hash_extent(self, hasher: hashlib._Hash, extent: Extent, length: int) -> None:
        """Feed the first `length` bytes of `extent` to `hasher`, a ranged GET at a time."""
        for start in range(0, length, PIECE):
            piece = Location(extent.object, extent.offset + start, min(PIECE, length - start))
            data = await self.reader.read(piece)
            if len(data) < THREAD_HASH:
                hasher.update(data)
            else:  # hashlib lets go of the GIL on large buffers: hash beside the event loop
                await trio.to_thread.run_sync(hasher.update, data)


async def _hand_out(
    walking: trio.MemoryReceiveChannel[_Pending], send: trio.MemorySendChannel[Entry]
) -> None:
    """The walked entries in walk order, each once it is complete."""
    async with walking:
        async for pending in walking:
            if pending.done is not None:
                await pending.done.wait()
            await send.send(pending.entry)
    # Not on failure: the consumer must not take a failed walk's end for the volume's.
    await send.aclose()


def _entry(path: bytes, head: InodeHead, link: bytes | None) -> Entry:
    """The manifest entry of an inode head, without a regular file's hash."""
    kind = TYPES[head.type << 12]
    size, digest = 0, None
    if head.type is FileType.REGULAR:
        size = head.size
    elif head.type is FileType.SYMLINK:
        target = head.symlink or b""
        size, digest = len(target), symlink_hash(target)
    return Entry(
        path, kind, size, head.mode, head.uid, head.gid, head.mtime_ns, digest,
        head.rdev if kind in DEVICES else 0, link, xattrs_digest(head.xattrs),
    )  # fmt: skip
