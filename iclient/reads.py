"""Reading stored bytes: a bounded cache of checked object blocks, with read-ahead.

Objects are read in aligned blocks (`block_bytes`) by ranged GETs and kept in
an LRU bounded in bytes. Reading block b of an object right after block b-1
starts fetching the next `readahead` blocks in the background, so a file
read front to back (whose data a writer laid down contiguously) streams.
Bytes of a segment not yet stored come from the write-back buffer instead.

Every fetched block is checked against the object's digest table
(layout.blocksums, loaded once per object) before it is used. A block with
a bad 64 KiB piece is never cached, and a read that touches the bad piece
fails with a LayoutError naming the object and offset (EIO at the mount);
reads of the same block's good pieces, other files' bytes, still succeed.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

import trio

from layout.blocksums import BLOCK_SIZE, BlockSums, mismatch
from layout.errors import LayoutError
from layout.naming import object_name
from objfs.objects import Buffer, read_block_sums
from objfs.storage import NotFound, ObjectStore, StorageError

log = logging.getLogger(__name__)

SUMS_CACHED = 4096  # objects whose digest tables are kept
# What a background fetch logs (at debug) and drops: the reader that needs it sees it.
_QUIET = (LayoutError, StorageError, OSError)


class _Flights:
    """Loads under way, by key, so that concurrent askers of one key share one load."""

    def __init__(self) -> None:
        self._done: dict[Hashable, trio.Event] = {}

    def __len__(self) -> int:
        return len(self._done)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._done

    async def waited(self, key: Hashable) -> bool:
        """Wait for the load of `key` if one is under way; whether there was one."""
        done = self._done.get(key)
        if done is not None:
            await done.wait()
        return done is not None

    @contextmanager
    def loading(self, key: Hashable) -> Iterator[None]:
        done = self._done[key] = trio.Event()
        try:
            yield
        finally:
            del self._done[key]
            done.set()


class _Damaged(LayoutError):
    """A fetched block with pieces that fail their digests: never cached."""

    def __init__(self, name: str, data: bytes, bad: list[int]) -> None:
        super().__init__(f"{len(bad)} bad data blocks from offset {bad[0]}", f"object {name}")
        self.data, self.bad = data, bad

    def unless_touching(self, lo: int, hi: int) -> bytes:
        """The block, if the object bytes [lo, hi) wanted miss every bad piece."""
        for at in self.bad:
            if at < hi and lo < at + BLOCK_SIZE:
                raise mismatch(at, str(self.where)) from None
        return self.data


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
        self._fetching = _Flights()  # of (object, block)
        self._sums: OrderedDict[int, BlockSums] = OrderedDict()
        self._sums_loading = _Flights()  # of objects
        self._last: dict[int, int] = {}  # object -> last block read, for read-ahead
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
        parts = []
        for b in range(first, last + 1):
            try:
                parts.append(await self._block(obj, b))
            except _Damaged as damaged:
                parts.append(damaged.unless_touching(offset, offset + length))
        start = offset - first * size
        if len(parts) == 1:
            return parts[0][start : start + length]
        # Only the wanted bytes are copied, once: blocks are 1 MiB and so is a kernel read.
        end = offset + length - last * size
        return b"".join([memoryview(parts[0])[start:], *parts[1:-1], memoryview(parts[-1])[:end]])

    def _read_ahead(self, obj: int, start: int) -> None:
        if self._nursery is None:
            return
        stop = start + self.readahead
        sums = self._sums.get(obj)
        if sums is not None:
            stop = min(stop, -(-sums.covered // self.block_bytes))
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
            except _QUIET as exc:
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
            if not await self._fetching.waited(key):
                break
        if not prefetch:
            self.misses += 1
        with self._fetching.loading(key):
            data = await self._fetch(obj, block)
            self._keep(key, data)
            return data

    async def _fetch(self, obj: int, block: int) -> bytes:
        """Block `block` of `obj` up to the end of its checked bytes; _Damaged if it fails."""
        offset = block * self.block_bytes
        length = self.block_bytes
        known = self._sums.get(obj)
        if known is not None:
            length = min(length, known.covered - offset)
            if length <= 0:
                return b""  # past the end
        elif self._nursery is not None:
            # A cold object's table loads alongside its first block: one round trip, not two.
            self._nursery.start_soon(self._preload_sums, obj)
        name = object_name(obj)
        where = f"object {name} at {offset}"
        try:
            data = await self.store.get(name, offset, length)
        except NotFound:
            raise LayoutError("the object is missing", where) from None
        self.fetched_bytes += len(data)
        sums = await self._block_sums(obj)
        want = min(self.block_bytes, sums.covered - offset)
        if want <= 0:
            return b""  # past the end
        if len(data) < want:
            raise LayoutError(f"read {len(data)} bytes, expected {want}", where)
        if len(data) > want:
            data = data[:want]  # the object's digest table, read along with its last block
        bad = sums.bad_blocks(offset, data)
        if bad:
            raise _Damaged(name, data, bad)
        return data

    async def _preload_sums(self, obj: int) -> None:
        try:
            await self._block_sums(obj)
        except _QUIET as exc:  # the reader waiting for them loads them again and fails
            log.debug("digest table of %s: %s", object_name(obj), exc)

    async def _block_sums(self, obj: int) -> BlockSums:
        """The object's digest table, loaded once however many readers want it at once."""
        while True:
            sums = self._sums.get(obj)
            if sums is not None:
                self._sums.move_to_end(obj)
                return sums
            if not await self._sums_loading.waited(obj):
                break
        with self._sums_loading.loading(obj):
            sums = self._sums[obj] = await read_block_sums(self.store, obj)
            if len(self._sums) > SUMS_CACHED:
                self._sums.popitem(last=False)
            return sums

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
