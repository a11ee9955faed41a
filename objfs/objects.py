"""Reading records by Location, and objects' digest tables, from an object store.

Every reader of the on-object format (imgr's inode table, iclient's trees
and heads, its file data, fsck) turns a Location or an object's tail into
bytes here, so a missing object or a short read is reported the same way: a
LayoutError naming the object and offset, which the mount answers with EIO.
"""

from __future__ import annotations

import logging
import mmap

from layout.blocksums import TAIL_GUESS, BlockSums, NeedMore
from layout.codec import Location
from layout.errors import LayoutError
from layout.naming import object_name
from objfs.storage import NotFound, ObjectStore

log = logging.getLogger(__name__)

Buffer = bytes | bytearray | mmap.mmap


class StoreReader:
    """A `layout.btree.PageReader` over an object store.

    A segment's pages are cached under their new Locations as soon as the
    tree is flushed into it, before the segment is stored; one evicted
    meanwhile must be read back from the segment's bytes, so a writer lists
    its segments in `unstored` until they are stored.
    """

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        # bytes, a live bytearray being filled, or an mmap of a spilled segment
        self.unstored: dict[int, Buffer] = {}

    async def read(self, location: Location) -> bytes:
        name = object_name(location.object)
        where = f"object {name} at {location.offset}"
        pending = self.unstored.get(location.object)
        if pending is not None:
            data = bytes(pending[location.offset : location.offset + location.length])
            if len(data) != location.length:
                raise LayoutError(f"unstored segment holds {len(pending)} bytes", where)
            return data
        try:
            data = await self.store.get(name, location.offset, location.length)
        except NotFound:
            raise LayoutError("the object is missing", where) from None
        if len(data) != location.length:
            raise LayoutError(f"read {len(data)} bytes, expected {location.length}", where)
        return data


async def read_block_sums(store: ObjectStore, number: int) -> BlockSums:
    """The digest table of stored object `number`: a HEAD and one ranged GET (two if large)."""
    name = object_name(number)
    where = f"object {name}"
    try:
        size = (await store.head(name)).size
        tail = await _tail(store, name, size, TAIL_GUESS)
        try:
            return BlockSums.from_tail(tail, size, where)
        except NeedMore as more:
            tail = await _tail(store, name, size, more.n)
        return BlockSums.from_tail(tail, size, where)
    except NotFound:
        raise LayoutError("the object is missing", where) from None


async def _tail(store: ObjectStore, name: str, size: int, length: int) -> bytes:
    start = max(0, size - length)
    tail = await store.get(name, start)
    if len(tail) != size - start:
        raise LayoutError(f"read {len(tail)} bytes, expected {size - start}", f"object {name}")
    return tail
