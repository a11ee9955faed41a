"""Reading stored bytes: a bounded cache of object blocks, with read-ahead.

Objects are read in aligned blocks (`block_bytes`) by ranged GETs and kept in
an LRU bounded in bytes. Reading block b of an object right after block b-1
starts fetching the next `readahead` blocks in the background, so a file
read front to back (whose data a writer laid down contiguously) streams.
Bytes of a segment not yet stored come from the write-back buffer instead.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

import trio

from layout.errors import LayoutError
from layout.naming import object_name
from objfs.objects import Buffer
from objfs.storage import NotFound, ObjectStore

log = logging.getLogger(__name__)


class BlockCache:
    def __init__(
        self,
        store: ObjectStore,
        unstored: dict[int, Buffer],
        *,
        block_bytes: int = 1 << 20,
        max_bytes: int = 256 << 20,
        readahead: int = 8,
    ) -> None:
        self.store = store
        self.unstored = unstored
        self.block_bytes = block_bytes
        self.max_bytes = max_bytes
        self.readahead = readahead
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self.fetched_bytes = 0
        self._blocks: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._fetching: dict[tuple[int, int], trio.Event] = {}
        self._last: dict[int, int] = {}  # object -> last block read, for read-ahead
        self._ends: dict[int, int] = {}  # object -> its last block, once a short one was read
        self._nursery: trio.Nursery | None = None
        self._prefetch_slots = trio.CapacityLimiter(max(1, readahead))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the read-ahead fetches until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    async def read(self, obj: int, offset: int, length: int) -> bytes:
        """`length` bytes of object `obj` from `offset`; LayoutError if they are not there."""
        pending = self.unstored.get(obj)
        if pending is not None:
            data = bytes(pending[offset : offset + length])
        else:
            data = await self._read_blocks(obj, offset, length)
        if len(data) != length:
            where = f"object {object_name(obj)} at {offset}"
            raise LayoutError(f"read {len(data)} bytes, expected {length}", where)
        return data

    async def _read_blocks(self, obj: int, offset: int, length: int) -> bytes:
        size = self.block_bytes
        first, last = offset // size, (offset + length - 1) // size
        previous = self._last.get(obj)
        if previous != last and (previous == first - 1 or offset == 0):
            self._read_ahead(obj, last + 1)
        self._last[obj] = last
        parts = [await self._block(obj, b) for b in range(first, last + 1)]
        joined = parts[0] if len(parts) == 1 else b"".join(parts)
        start = offset - first * size
        return joined[start : start + length]

    def _read_ahead(self, obj: int, start: int) -> None:
        if self._nursery is None:
            return
        stop = min(start + self.readahead, self._ends.get(obj, start + self.readahead) + 1)
        for b in range(start, stop):
            if len(self._fetching) >= 2 * self.readahead:
                return  # enough under way; a reader that keeps up will ask again
            key = (obj, b)
            if key not in self._blocks and key not in self._fetching:
                self._nursery.start_soon(self._prefetch, obj, b)

    async def _prefetch(self, obj: int, block: int) -> None:
        async with self._prefetch_slots:
            try:
                await self._block(obj, block, prefetch=True)
            except (LayoutError, OSError) as exc:
                log.debug("read-ahead of %s block %d: %s", object_name(obj), block, exc)

    async def _block(self, obj: int, block: int, prefetch: bool = False) -> bytes:
        key = (obj, block)
        while True:
            data = self._blocks.get(key)
            if data is not None:
                self._blocks.move_to_end(key)
                if not prefetch:
                    self.hits += 1
                return data
            fetching = self._fetching.get(key)
            if fetching is None:
                break
            await fetching.wait()
        if not prefetch:
            self.misses += 1
        done = self._fetching[key] = trio.Event()
        try:
            data = await self._fetch(obj, block)
            self._keep(key, data)
            return data
        finally:
            del self._fetching[key]
            done.set()

    async def _fetch(self, obj: int, block: int) -> bytes:
        name = object_name(obj)
        offset = block * self.block_bytes
        try:
            data = await self.store.get(name, offset, self.block_bytes)
        except NotFound:
            raise LayoutError("the object is missing", f"object {name} at {offset}") from None
        self.fetched_bytes += len(data)
        if len(data) < self.block_bytes:
            self._ends[obj] = block
        return data

    def _keep(self, key: tuple[int, int], data: bytes) -> None:
        if not data:
            return  # past the end: nothing worth keeping
        blocks = self._blocks
        blocks[key] = data
        self.nbytes += len(data)
        while self.nbytes > self.max_bytes:
            _, old = blocks.popitem(last=False)
            self.nbytes -= len(old)

    def stats(self) -> dict[str, int]:
        return {
            "read_cache_bytes": self.nbytes,
            "read_cache_hits": self.hits,
            "read_cache_misses": self.misses,
            "read_fetched_bytes": self.fetched_bytes,
        }
