"""An inode of the source tree as the volume stores it: payload tree pages, then its head.

The job database holds everything a head needs once the scan is done and the
inode's data is in segments: its stat fields, its links, its xattrs, and
its data pieces (a file) or its entries (a directory). Building is a pure
function of those rows, so a segment rebuilt on resume has the same bytes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import msgpack

from layout.btree import BTree
from layout.codec import IntCodec, Location
from layout.pagecache import PageCache
from layout.records import (
    DirEntry,
    DirEntryCodec,
    DirNameCodec,
    Extent,
    ExtentCodec,
    FileType,
    InodeHead,
)
from layout.segment import Segment

PAGE_BYTES = 8192  # the page size iclient gives directories and extent maps


@dataclass(frozen=True, slots=True)
class Placed:
    """Where a head went, and the bytes of the segment its inode references."""

    location: Location
    meta_bytes: int  # payload pages and the head, all in this segment


class _NoReads:
    """A new tree is built only from puts; it never reads a page back."""

    async def read(self, location: Location) -> bytes:
        raise AssertionError(f"a tree being built read {location}")


def _now(step: Coroutine[Any, Any, None]) -> None:
    """Run a tree step that cannot wait: a tree built from puts alone never loads a page."""
    try:
        step.send(None)
    except StopIteration:
        return
    step.close()
    raise AssertionError("a tree being built waited for a page")


class Heads:
    """Builds heads from the job database; one per thread (it holds a connection)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.cache = PageCache(1 << 20)

    def place(self, row: sqlite3.Row, segment: Segment) -> Placed:
        """Append the inode's payload pages and head to `segment`."""
        start = len(segment)
        kind = FileType(row["type"])
        accounting: dict[int, int] = {}
        payload = None
        if kind is FileType.REGULAR:
            payload = self._tree(self._extents(row["inode"], accounting), segment, accounting)
        elif kind is FileType.DIRECTORY:
            payload = self._tree(self._entries(row["inode"]), segment, accounting)
        links = self.db.execute(
            "SELECT parent, name FROM links WHERE inode = ? ORDER BY parent, name",
            (row["inode"],),
        ).fetchall()
        xattrs = row["xattrs"]
        head = InodeHead(
            inode=row["inode"],
            type=kind,
            mode=row["mode"],
            uid=row["uid"],
            gid=row["gid"],
            atime_ns=row["atime_ns"],
            mtime_ns=row["mtime_ns"],
            ctime_ns=row["ctime_ns"],
            btime_ns=row["ctime_ns"],  # Linux's stat() does not give the birth time
            size=row["size"],
            rdev=row["rdev"],
            links=tuple((parent, bytes(name)) for parent, name in links),
            xattrs=dict(msgpack.unpackb(xattrs)) if xattrs else {},
            symlink=None if row["symlink"] is None else bytes(row["symlink"]),
            payload=payload,
            accounting=accounting,
        )
        location = segment.append(head.encode())
        return Placed(location, len(segment) - start)

    def _extents(self, inode: int, accounting: dict[int, int]) -> list[tuple[int, Extent]]:
        rows = self.db.execute(
            "SELECT file_offset, length, segment, object_offset FROM pieces "
            "WHERE inode = ? ORDER BY file_offset",
            (inode,),
        )
        extents = []
        for file_offset, length, obj, object_offset in rows:
            extents.append((file_offset, Extent(length, obj, object_offset)))
            accounting[obj] = accounting.get(obj, 0) + length
        return extents

    def _entries(self, inode: int) -> list[tuple[bytes, DirEntry]]:
        rows = self.db.execute(
            "SELECT links.name, links.inode, inodes.type FROM links "
            "JOIN inodes ON inodes.inode = links.inode "
            "WHERE links.parent = ? AND inodes.failed IS NULL ORDER BY links.name",
            (inode,),
        )
        return [(bytes(name), DirEntry(child, FileType(kind))) for name, child, kind in rows]

    def _tree(self, items: list, segment: Segment, accounting: dict[int, int]) -> Location | None:
        if not items:
            return None
        codecs = (IntCodec(), ExtentCodec()) if isinstance(items[0][0], int) else (
            DirNameCodec(), DirEntryCodec())  # fmt: skip
        tree = BTree(None, _NoReads(), *codecs, cache=self.cache, page_bytes=PAGE_BYTES)
        for key, value in items:
            _now(tree.put(key, value))
        before = len(segment)
        root = tree.flush(segment).root
        accounting[segment.number] = accounting.get(segment.number, 0) + len(segment) - before
        return root
