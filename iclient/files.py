"""A regular file's bytes: its extent map (offset -> bytes of some object).

Writes append their bytes to the open segment and point the extent map at
them; a rewrite of bytes still in the open segment is done in place, so a
program rewriting one block (a database page, fsx) does not pile up
garbage. Holes are ranges no extent covers and read as zeros. Every extent
byte added or dropped is counted in the inode's accounting.

The caller holds the inode's lock and a Gate change section for write and
truncate; read needs neither.
"""

from __future__ import annotations

from contextlib import aclosing

from iclient.inode import Inode
from iclient.reads import BlockCache
from iclient.segments import Segments
from layout.btree import BTree
from layout.codec import Location
from layout.records import Extent


class FileData:
    def __init__(self, segments: Segments, blocks: BlockCache) -> None:
        self.segments = segments
        self.blocks = blocks

    async def write(self, inode: Inode, offset: int, data: bytes) -> None:
        tree = _tree(inode)
        end = offset + len(data)
        found = await tree.floor(offset)
        if found is not None:
            start, extent = found
            if start + extent.length >= end and self.segments.is_open(extent.object):
                at = extent.offset + offset - start
                self.segments.overwrite(Location(extent.object, at, len(data)), data)
                return
        await self.punch(inode, offset, end)
        await self.segments.reserve(len(data))
        location = self.segments.append(data)
        inode.account(location.object, len(data))
        await self._insert(tree, offset, Extent(len(data), location.object, location.offset))

    async def _insert(self, tree: BTree, offset: int, extent: Extent) -> None:
        """Add an extent, extending its left neighbour when the bytes follow on."""
        if offset:
            left = await tree.floor(offset - 1)
            if left is not None:
                start, prev = left
                if (
                    start + prev.length == offset
                    and prev.object == extent.object
                    and prev.offset + prev.length == extent.offset
                ):
                    await tree.put(
                        start, Extent(prev.length + extent.length, prev.object, prev.offset)
                    )
                    return
        await tree.put(offset, extent)

    async def punch(self, inode: Inode, lo: int, hi: int) -> None:
        """Drop the bytes in [lo, hi) from the map (they become a hole)."""
        tree = _tree(inode)
        for start, extent in await _overlapping(tree, lo, hi):
            stop = start + extent.length
            inode.account(extent.object, -(min(stop, hi) - max(start, lo)))
            if start < lo:
                await tree.put(start, Extent(lo - start, extent.object, extent.offset))
            else:
                await tree.delete(start)
            if stop > hi:
                tail = Extent(stop - hi, extent.object, extent.offset + hi - start)
                await tree.put(hi, tail)

    async def truncate(self, inode: Inode, size: int) -> None:
        if size < inode.head.size:
            await self.punch(inode, size, inode.head.size)

    async def read(self, inode: Inode, offset: int, length: int) -> bytes:
        size = inode.head.size
        end = min(offset + length, size)
        if offset >= end:
            return b""
        parts = []
        at = offset
        for start, extent in await _overlapping(_tree(inode), offset, end):
            lo, hi = max(start, offset), min(start + extent.length, end)
            if lo > at:
                parts.append(bytes(lo - at))  # a hole reads as zeros
            parts.append(await self.blocks.read(extent.object, extent.offset + lo - start, hi - lo))
            at = hi
        if at < end:
            parts.append(bytes(end - at))
        return b"".join(parts)  # one copy; none when one extent covers it all (join returns it)


async def _overlapping(tree: BTree, lo: int, hi: int) -> list[tuple[int, Extent]]:
    """The extents holding bytes of [lo, hi), in order (collected before any change)."""
    pieces = []
    found = await tree.floor(lo)
    if found is not None and found[0] < lo < found[0] + found[1].length:
        pieces.append(found)
    async with aclosing(tree.items(lo)) as entries:
        async for start, extent in entries:
            if start >= hi:
                break
            pieces.append((start, extent))
    return pieces


def _tree(inode: Inode) -> BTree:
    assert inode.tree is not None, f"inode {inode.number} has no extent map"
    return inode.tree
