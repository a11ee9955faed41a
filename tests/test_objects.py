"""Reading records by Location: from the store, or from a segment not stored yet."""

from __future__ import annotations

import pytest

from layout.codec import Location
from layout.errors import LayoutError
from layout.naming import object_name
from objfs.objects import StoreReader
from objfs.storage import open_store


async def test_reads_a_byte_range_of_a_stored_object():
    async with open_store("mem://objects-stored") as store:
        await store.ensure_container()
        await store.put(object_name(7), b"0123456789")
        assert await StoreReader(store).read(Location(7, 2, 3)) == b"234"


async def test_a_missing_object_or_short_read_names_object_and_offset():
    async with open_store("mem://objects-missing") as store:
        await store.ensure_container()
        await store.put(object_name(7), b"0123")
        reader = StoreReader(store)
        with pytest.raises(LayoutError, match=r"missing \(object 8000000000000000 at 0\)"):
            await reader.read(Location(8, 0, 4))
        with pytest.raises(LayoutError, match="read 2 bytes, expected 4"):
            await reader.read(Location(7, 2, 4))


async def test_a_segment_being_uploaded_is_read_from_memory():
    # Its pages are cached as soon as the tree is flushed into it; one evicted
    # before the upload ends must not be looked for in the store.
    async with open_store("mem://objects-unstored") as store:
        await store.ensure_container()
        reader = StoreReader(store)
        reader.unstored[9] = b"abcdef"
        assert await reader.read(Location(9, 1, 3)) == b"bcd"
        with pytest.raises(LayoutError, match="unstored segment holds 6 bytes"):
            await reader.read(Location(9, 4, 3))
        del reader.unstored[9]
        with pytest.raises(LayoutError, match="missing"):
            await reader.read(Location(9, 1, 3))
