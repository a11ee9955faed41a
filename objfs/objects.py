"""Reading records by Location from an object store.

Every reader of the on-object format (imgr's inode table, iclient's trees
and heads, fsck) turns a Location into bytes here, so a missing object or a
short read is reported the same way: a LayoutError naming the object and
offset, which the mount answers with EIO.
"""

from __future__ import annotations

import logging
import mmap

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
