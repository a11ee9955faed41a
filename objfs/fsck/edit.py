"""Changing a volume nobody serves: heads and pages into one new segment, then one checkpoint.

fsck's repairs change inodes directly, without imgr or a mount: the inode
table is loaded as imgr loads it (imgr.state.load), every changed payload
tree and head goes into one new segment, and the checkpoint is written
through imgr's own steps (imgr.checkpoint: prepare, store, compare-and-swap,
back up, collect). Until the compare-and-swap nothing the volume refers to
has changed, so an interruption at any point leaves the old volume and at
most one object nothing references (an orphan the next fsck deletes).

The caller must own the volume (imgr.ownership.claim) while it edits; the
compare-and-swap fails (Fenced) if the checkpoint moved anyway.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from ickpt.store import CheckpointStore
from imgr import checkpoint as steps
from imgr.ownership import checkpoint_key
from imgr.state import VolumeState, load
from layout.btree import BTree
from layout.codec import IntCodec, Location
from layout.errors import LayoutError
from layout.pagecache import PageCache
from layout.records import (
    Checkpoint,
    DirEntryCodec,
    DirNameCodec,
    ExtentCodec,
    FileType,
    InodeHead,
)
from layout.segment import Segment
from objfs.objects import StoreReader
from objfs.storage import ObjectStore

log = logging.getLogger(__name__)

CACHE_BYTES = 16 << 20
PAGE_BYTES = 8192  # the page size iclient gives directories and extent maps


class VolumeEdit:
    def __init__(
        self, store: ObjectStore, ckpt: CheckpointStore, key: str, state: VolumeState
    ) -> None:
        self.store, self.ckpt, self.key, self.state = store, ckpt, key, state
        self.cache = PageCache(CACHE_BYTES)
        number, _ = state.objects.take_for_checkpoint()
        self.segment = Segment(number)
        state.reader.unstored[number] = self.segment.buffer  # pages evicted before it is stored
        self.released: dict[int, int] = {}  # bytes no longer referenced, per object

    @classmethod
    async def open(cls, store: ObjectStore, ckpt: CheckpointStore, volume: str) -> VolumeEdit:
        key = checkpoint_key(volume)
        found = await ckpt.get(key)
        if found is None:
            raise LayoutError(f"volume {volume} has no checkpoint")
        version, value = found
        record = Checkpoint.decode(value, f"checkpoint of volume {volume}")
        state = await load(record, version, StoreReader(store), PageCache(CACHE_BYTES))
        return cls(store, ckpt, key, state)

    @property
    def record(self) -> Checkpoint | None:
        return self.state.record

    async def head(self, inode: int) -> tuple[InodeHead, Location]:
        location = await self.state.table.get(inode)
        if location is None:
            raise LayoutError(f"inode {inode} is not in the inode table")
        data = await self.state.reader.read(location)
        return InodeHead.decode(data, f"inode head in {location}"), location

    def tree(self, head: InodeHead) -> BTree:
        """The head's payload tree: a directory's entries or a file's extents."""
        if head.type is FileType.DIRECTORY:
            codecs = (DirNameCodec(), DirEntryCodec())
        else:
            codecs = (IntCodec(), ExtentCodec())
        reader = self.state.reader
        return BTree(head.payload, reader, *codecs, cache=self.cache, page_bytes=PAGE_BYTES)

    def new_inode(self) -> int:
        """A number nobody was handed: the checkpoint written at commit raises the ceiling."""
        nonces = self.state.inodes
        number, nonces.cursor = nonces.cursor, nonces.cursor + 1
        return number

    async def put(
        self, head: InodeHead, tree: BTree | None = None, old: Location | None = None
    ) -> InodeHead:
        """Store `head`, with the changed pages of its payload `tree`; `old`: where it was."""
        segment = self.segment
        if tree is not None and tree.dirty:
            accounting = dict(head.accounting)
            before = len(segment)
            flushed = tree.flush(segment)
            _add(accounting, segment.number, len(segment) - before)
            for obj, nbytes in flushed.released.items():
                _add(accounting, obj, -nbytes)
                _add(self.released, obj, nbytes)
            counted = {obj: nbytes for obj, nbytes in accounting.items() if nbytes}
            head = replace(head, payload=flushed.root, accounting=counted)
        location = segment.append(head.encode())
        if old is None:
            self.state.inode_count += 1
        else:
            _add(self.released, old.object, old.length)
        await self.state.table.put(head.inode, location)
        return head

    async def commit(self) -> Checkpoint:
        """Write the checkpoint; AccountingError (nothing written) if the counts disagree."""
        state = self.state
        state.accounts.check({}, {}, self.released)
        state.accounts.apply({}, {}, self.released)
        prepared = steps.prepare(state, self.segment)
        await steps.store_segment(self.store, prepared)
        version = await steps.swap(self.ckpt, self.key, state, prepared)
        steps.made_durable(state, prepared, version)
        log.info("volume %s: checkpoint %d written", self.key, prepared.record.sequence)
        backed_up = await steps.back_up(self.store, prepared.record)
        doomed = [o for o in prepared.deleting if backed_up or o != prepared.old_superblock]
        await steps.collect(self.store, state, doomed)
        return prepared.record


def _add(counts: dict[int, int], key: int, value: int) -> None:
    counts[key] = counts.get(key, 0) + value
