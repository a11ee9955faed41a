"""The walk: every structure a checkpoint reaches, read once and checked as it is read.

superblock -> inode table (every page) -> every inode head -> its payload
B+tree (a directory's entries, a file's extents). What the later checks
need is kept small: per inode its type and link table, the directory
entries naming it, and per object the byte ranges each inode uses there, so
that damage found later inside an object can be turned into the paths it
hurts. A record that cannot be read is a problem at its object and offset;
the walk goes on with everything else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from layout.btree import BTree
from layout.codec import Codec, IntCodec, Location
from layout.errors import LayoutError
from layout.naming import object_name
from layout.pagecache import PageCache
from layout.records import (
    Checkpoint,
    DirEntry,
    DirEntryCodec,
    DirNameCodec,
    Extent,
    ExtentCodec,
    FileType,
    InodeHead,
    InodeTableCodec,
    Superblock,
)
from objfs.fsck.progress import Progress
from objfs.fsck.report import TABLE, Problem, Report
from objfs.fsck.tasks import each
from objfs.objects import StoreReader
from objfs.storage import ObjectStore

log = logging.getLogger(__name__)

WORKERS = 16  # inodes walked at once
CACHE_BYTES = 32 << 20  # decoded pages kept while one tree is verified, listed and read
ANY_PAGE = 1 << 24  # pages of whatever size their writer chose are fine here


@dataclass(slots=True)
class Head:
    """What the checks need of one inode's head."""

    type: FileType
    links: tuple[tuple[int, bytes], ...]


@dataclass(slots=True)
class Entry:
    """A directory entry naming an inode."""

    parent: int
    name: bytes
    type: FileType


@dataclass
class Walk:
    record: Checkpoint
    superblock: Superblock | None = None
    table: dict[int, Location] = field(default_factory=dict)  # the inode table
    heads: dict[int, Head] = field(default_factory=dict)  # the heads that could be read
    named: dict[int, list[Entry]] = field(default_factory=dict)  # inode -> entries naming it
    # object -> (start, end, inode) of every byte range the volume refers to there
    uses: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)
    referenced: dict[int, int] = field(default_factory=dict)  # object -> bytes, as counted
    damaged: set[int] = field(default_factory=set)  # inodes not read whole (TABLE: the table)
    heads_known: bool = True  # every head was read: `referenced` is complete

    def use(self, obj: int, offset: int, length: int, inode: int) -> None:
        ranges = self.uses.setdefault(obj, [])
        end = offset + length
        if ranges and ranges[-1][2] == inode and ranges[-1][1] == offset:
            ranges[-1] = (ranges[-1][0], end, inode)  # extend: a file's bytes often follow on
        else:
            ranges.append((offset, end, inode))


def bare(exc: LayoutError) -> str:
    """The error's message without the `(where)` its raiser added: fsck says where itself."""
    text = str(exc)
    return text.removesuffix(f" ({exc.where})") if exc.where else text


class _Tracking:
    """A PageReader that remembers the last page it read: where a tree's error lies."""

    def __init__(self, reader: StoreReader) -> None:
        self.reader = reader
        self.last: Location | None = None

    async def read(self, location: Location) -> bytes:
        self.last = location
        return await self.reader.read(location)


class Walker:
    def __init__(
        self, store: ObjectStore, record: Checkpoint, report: Report, progress: Progress
    ) -> None:
        self.reader = StoreReader(store)
        self.cache = PageCache(CACHE_BYTES)
        self.report = report
        self.progress = progress
        self.walk = Walk(record)

    async def run(self) -> Walk:
        superblock = await self._superblock()
        if superblock is not None:
            self.walk.superblock = superblock
            await self._table(superblock)
            self.progress.start("inodes", len(self.walk.table))
            await self._inodes()
        return self.walk

    def _damage(self, problem: Problem, inode: int) -> None:
        self.report.add(problem)
        self.report.complete = False
        self.walk.damaged.add(inode)

    async def _superblock(self) -> Superblock | None:
        record = self.walk.record
        location = record.superblock
        self.walk.use(location.object, location.offset, location.length, TABLE)
        try:
            data = await self.reader.read(location)
            return Superblock.decode(data, f"superblock of checkpoint {record.sequence}")
        except LayoutError as exc:
            problem = Problem("record", f"superblock: {bare(exc)}", *_at(location), {TABLE})
            self._damage(problem, TABLE)
            self.walk.heads_known = False
            return None

    async def _table(self, superblock: Superblock) -> None:
        table = self.walk.table
        codecs = (IntCodec(), InodeTableCodec())
        if not await self._tree(
            "inode table", superblock.inode_table, TABLE, codecs, table.__setitem__
        ):
            self.walk.heads_known = False
        elif len(table) != superblock.inode_count:
            message = f"the inode table holds {len(table)} inodes, the superblock says "
            self.report.add(Problem("space", message + str(superblock.inode_count)))

    async def _tree(
        self,
        what: str,
        root: Location | None,
        owner: int,
        codecs: tuple[Codec, Codec],
        visit: Callable[[Any, Any], None],
        found: dict[int, int] | None = None,
    ) -> bool:
        """Visit the entries of the tree at `root`, count its pages and verify its shape.

        False if it is damaged; the entries before the damage were visited.
        """
        if root is None:
            return True
        reader = _Tracking(self.reader)
        tree = BTree(root, reader, *codecs, cache=self.cache, page_bytes=ANY_PAGE)
        counted = self.walk.referenced if found is None else found
        try:
            async for key, value in tree.items():
                visit(key, value)
            async for _, page in tree.page_locations():
                self.walk.use(page.object, page.offset, page.length, owner)
                _add(counted, page.object, page.length)
            await tree.verify()
            return True
        except LayoutError as exc:
            problem = Problem("tree", f"{what}: {bare(exc)}", *_at(reader.last or root), {owner})
            self._damage(problem, owner)
            return False

    async def _inodes(self) -> None:
        async def one(item: tuple[int, Location]) -> None:
            await self._inode(*item)
            self.progress.step()

        await each(self.walk.table.items(), one, WORKERS)

    async def _inode(self, number: int, location: Location) -> None:
        walk = self.walk
        walk.use(location.object, location.offset, location.length, number)
        _add(walk.referenced, location.object, location.length)
        if number >= walk.record.next_inode:
            message = (
                f"inode {number} is at or above the next inode number {walk.record.next_inode}"
            )
            self.report.add(Problem("structure", message, inodes={number}))
        try:
            head = InodeHead.decode(await self.reader.read(location), "inode head")
            if head.inode != number:
                raise LayoutError(f"the inode table's entry {number} leads to inode {head.inode}")
        except LayoutError as exc:
            message = f"inode head of inode {number}: {bare(exc)}"
            self._damage(Problem("record", message, *_at(location), {number}), number)
            walk.heads_known = False
            return
        walk.heads[number] = Head(head.type, head.links)
        found: dict[int, int] = {}
        if await self._payload(head, found):
            if found != head.accounting:
                self.report.add(Problem("accounting", _accounting(head, found), inodes={number}))
        else:
            found = head.accounting  # the best count of what the unreadable part holds
        for obj, nbytes in found.items():
            _add(walk.referenced, obj, nbytes)

    async def _payload(self, head: InodeHead, found: dict[int, int]) -> bool:
        number = head.inode
        if head.type is FileType.DIRECTORY:
            named = self.walk.named

            def entry(name: bytes, value: DirEntry) -> None:
                named.setdefault(value.inode, []).append(Entry(number, name, value.type))

            codecs: tuple[Codec, Codec] = (DirNameCodec(), DirEntryCodec())
            return await self._tree(
                f"directory inode {number}", head.payload, number, codecs, entry, found
            )
        extents = _Extents(self.walk, self.report, head, found)
        codecs = (IntCodec(), ExtentCodec())
        return await self._tree(
            f"extent map of inode {number}", head.payload, number, codecs, extents.visit, found
        )


class _Extents:
    """A file's extents as its map lists them: in order, inside the file, not overlapping."""

    def __init__(self, walk: Walk, report: Report, head: InodeHead, found: dict[int, int]) -> None:
        self.walk, self.report, self.head, self.found = walk, report, head, found
        self.end = 0

    def visit(self, offset: int, extent: Extent) -> None:
        number = self.head.inode
        stop = offset + extent.length
        if offset < self.end or stop > self.head.size:
            what = "overlaps the one before" if offset < self.end else "runs past the file's size"
            message = f"inode {number}: the extent at file offset {offset} {what}"
            at = (extent.object, extent.offset)
            self.report.add(Problem("extent", message, *at, {number}))
        self.end = max(self.end, stop)
        self.walk.use(extent.object, extent.offset, extent.length, number)
        _add(self.found, extent.object, extent.length)


def _accounting(head: InodeHead, found: dict[int, int]) -> str:
    wrong = sorted(o for o in {*head.accounting, *found} if head.accounting.get(o) != found.get(o))
    obj = wrong[0]
    more = f" (and {len(wrong) - 1} more objects)" if len(wrong) > 1 else ""
    return (
        f"inode {head.inode}: its head counts {head.accounting.get(obj, 0)} bytes in object "
        f"{object_name(obj)}, its payload holds {found.get(obj, 0)}{more}"
    )


def _at(location: Location) -> tuple[int, int]:
    return location.object, location.offset


def _add(counts: dict[int, int], key: int, value: int) -> None:
    counts[key] = counts.get(key, 0) + value
