"""Reading records by Location from an object store.

Every reader of the on-object format (imgr's inode table, iclient's trees
and heads, fsck) turns a Location into bytes here, so a missing object or a
short read is reported the same way: a LayoutError naming the object and
offset, which the mount answers with EIO.
"""

from __future__ import annotations

import logging

from layout.codec import Location
from layout.errors import LayoutError
from layout.naming import object_name
from objfs.storage import NotFound, ObjectStore

log = logging.getLogger(__name__)


class StoreReader:
    """A `layout.btree.PageReader` over an object store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    async def read(self, location: Location) -> bytes:
        name = object_name(location.object)
        where = f"object {name} at {location.offset}"
        try:
            data = await self.store.get(name, location.offset, location.length)
        except NotFound:
            raise LayoutError("the object is missing", where) from None
        if len(data) != location.length:
            raise LayoutError(f"read {len(data)} bytes, expected {location.length}", where)
        return data
