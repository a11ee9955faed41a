"""The copy-on-write B+tree against a dict model, its accounting, corruption and memory bound."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
import trio
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from layout.btree import BTree, FlushResult
from layout.codec import BytesCodec, IntCodec, Location
from layout.errors import LayoutError
from layout.framing import RecordType, frame
from layout.naming import object_name
from layout.pagecache import PageCache
from objfs.storage.mem import MemStore

_stores = itertools.count()


def segment_name(number: int) -> str:
    return f"seg/{number:016x}"


class Segments:
    """Pages packed into one object per flush in a mem:// store, as the mount will."""

    def __init__(self) -> None:
        self.store = MemStore(f"btree-test-{next(_stores)}")
        self.next_object = 1
        self.written: Counter[int] = Counter()
        self.reads = 0

    async def open(self) -> Segments:
        await self.store.ensure_container()
        return self

    async def read(self, location: Location) -> bytes:
        self.reads += 1
        return await self.store.get(segment_name(location.object), location.offset, location.length)

    async def flush(self, tree: BTree) -> FlushResult:
        writer = SegmentWriter(self.next_object)
        self.next_object += 1
        result = tree.flush(writer)
        if writer.data:
            await self.store.put(segment_name(writer.number), bytes(writer.data))
            self.written[writer.number] += len(writer.data)
        return result


class SegmentWriter:
    def __init__(self, number: int) -> None:
        self.number = number
        self.data = bytearray()

    def append(self, data: bytes) -> Location:
        location = Location(self.number, len(self.data), len(data))
        self.data += data
        return location


def int_tree(segments: Segments, root: Location | None, cache: PageCache, page_bytes: int) -> BTree:
    return BTree(root, segments, IntCodec(), IntCodec(), cache=cache, page_bytes=page_bytes)


async def collect(tree: BTree, start: object = None) -> list:
    return [kv async for kv in tree.items(start)]


async def referenced(tree: BTree) -> Counter[int]:
    refs: Counter[int] = Counter()
    async for _, location in tree.page_locations():
        refs[location.object] += location.length
    return refs


# Small keys so deletes hit; now and then a large one so entry sizes vary.
keys = st.integers(0, 150) | st.integers(0, (1 << 64) - 1)
values = st.integers(0, 300) | st.integers(0, (1 << 64) - 1)


class BTreeMachine(RuleBasedStateMachine):
    """Every rule runs in one trio.run and ends by checking the tree's invariants."""

    @initialize(page_bytes=st.sampled_from([128, 192, 512]))
    def setup(self, page_bytes: int) -> None:
        self.page_bytes = page_bytes
        self.segments = trio.run(Segments().open)
        # Shared with snapshot trees: a clean page mutated in place would show there.
        self.cache = PageCache(8 << 10)
        self.tree = int_tree(self.segments, None, self.cache, page_bytes)
        self.model: dict[int, int] = {}
        self.released: Counter[int] = Counter()
        self.snapshots: list[tuple[Location | None, dict[int, int]]] = []

    def run(self, action, *args):
        async def body():
            result = await action(*args)
            assert await self.tree.verify() == len(self.model)
            return result

        return trio.run(body)

    @rule(key=keys, value=values)
    def put(self, key, value):
        self.model[key] = value
        self.run(self.tree.put, key, value)

    @rule(entries=st.lists(st.tuples(keys, values), max_size=25))
    def put_many(self, entries):
        async def put_all():
            for key, value in entries:
                await self.tree.put(key, value)

        self.model.update(entries)
        self.run(put_all)

    @rule(low=st.integers(0, 150), span=st.integers(0, 60))
    def delete_range(self, low, span):
        async def delete_all():
            return [await self.tree.delete(key) for key in range(low, low + span)]

        expect = [self.model.pop(key, None) is not None for key in range(low, low + span)]
        assert self.run(delete_all) == expect

    @rule(key=keys)
    def delete(self, key):
        present = self.model.pop(key, None) is not None
        assert self.run(self.tree.delete, key) == present

    @rule(key=keys)
    def get(self, key):
        assert self.run(self.tree.get, key, -1) == self.model.get(key, -1)

    @rule(start=st.none() | keys)
    def scan(self, start):
        expect = sorted(kv for kv in self.model.items() if start is None or kv[0] >= start)
        assert self.run(collect, self.tree, start) == expect

    @rule(key=keys)
    def floor(self, key):
        below = [k for k in self.model if k <= key]
        expect = (max(below), self.model[max(below)]) if below else None
        assert self.run(self.tree.floor, key) == expect

    @rule()
    def ends_and_count(self):
        async def ends():
            return await self.tree.first(), await self.tree.last(), await self.tree.count()

        ordered = sorted(self.model.items())
        expect = (ordered[0], ordered[-1]) if ordered else (None, None)
        assert self.run(ends) == (*expect, len(self.model))

    @rule()
    def flush(self):
        result = self.run(self.segments.flush, self.tree)
        assert result.root == self.tree.root
        self.released.update(result.released)
        self.snapshots = [*self.snapshots[-3:], (result.root, dict(self.model))]
        again = self.run(self.segments.flush, self.tree)
        assert again.root == result.root and not again.released
        # Everything ever written is either still referenced or was released.
        refs = self.run(referenced, self.tree)
        assert refs + self.released == self.segments.written

    @rule()
    def reopen(self):
        self.flush()
        root = self.snapshots[-1][0]
        self.tree = int_tree(self.segments, root, PageCache(2 << 10), self.page_bytes)

    @precondition(lambda self: self.snapshots)
    @rule(data=st.data())
    def read_snapshot(self, data):
        root, contents = data.draw(st.sampled_from(self.snapshots))
        old = int_tree(self.segments, root, self.cache, self.page_bytes)

        async def check():
            assert await old.verify() == len(contents)
            return await collect(old)

        assert trio.run(check) == sorted(contents.items())

    @invariant()
    def cache_bounded(self):
        assert self.cache.nbytes <= self.cache.max_bytes


TestBTreeMachine = BTreeMachine.TestCase
TestBTreeMachine.settings = settings(
    max_examples=1000,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


async def build(segments: Segments, items, page_bytes: int = 8192) -> Location | None:
    tree = int_tree(segments, None, PageCache(1 << 20), page_bytes)
    for key, value in items:
        await tree.put(key, value)
    return (await segments.flush(tree)).root


async def test_accounting_across_rewrites():
    segments = await Segments().open()
    root = await build(segments, ((k, k) for k in range(3000)), page_bytes=512)
    released: Counter[int] = Counter()
    for round_ in range(5):
        tree = int_tree(segments, root, PageCache(1 << 14), 512)
        for k in range(round_, 3000, 7):
            await tree.put(k, k + round_)
        for k in range(round_ * 3, 3000, 11):
            await tree.delete(k)
        result = await segments.flush(tree)
        root = result.root
        released.update(result.released)
        assert await referenced(tree) + released == segments.written
    # A tree emptied to nothing releases everything ever written.
    tree = int_tree(segments, root, PageCache(1 << 14), 512)
    for key, _ in await collect(tree):
        assert await tree.delete(key)
    result = await segments.flush(tree)
    assert result.root is None
    released.update(result.released)
    assert released == segments.written


async def test_deletes_merge_pages_back():
    segments = await Segments().open()
    root = await build(segments, ((k, k) for k in range(5000)), page_bytes=256)
    tree = int_tree(segments, root, PageCache(1 << 20), 256)
    pages_full = len([loc async for loc in tree.page_locations()])
    for k in range(5, 5000):
        await tree.delete(k)
    await segments.flush(tree)
    assert await tree.verify() == 5
    assert pages_full > 100
    assert len([loc async for loc in tree.page_locations()]) == 1


async def test_snapshot_keeps_old_contents_with_shared_cache():
    segments = await Segments().open()
    cache = PageCache(1 << 20)
    tree = int_tree(segments, None, cache, 256)
    for k in range(1000):
        await tree.put(k, k)
    old_root = (await segments.flush(tree)).root
    for k in range(0, 1000, 2):
        await tree.put(k, -1 & 0xFFFF)
        await tree.delete(k + 1)
    await segments.flush(tree)
    old = int_tree(segments, old_root, cache, 256)
    assert await collect(old) == [(k, k) for k in range(1000)]
    assert await old.count() == 1000
    assert await tree.count() == 500


async def test_bytes_keys_like_a_directory():
    segments = await Segments().open()
    tree = BTree(
        None, segments, BytesCodec(), BytesCodec(), cache=PageCache(1 << 16), page_bytes=1024
    )
    names = {f"file-{i:05d}-{'x' * (i % 200)}".encode(): str(i).encode() for i in range(0, 3000, 3)}
    for name, value in names.items():
        await tree.put(name, value)
    root = (await segments.flush(tree)).root
    reopened = BTree(
        root, segments, BytesCodec(), BytesCodec(), cache=PageCache(8192), page_bytes=1024
    )
    assert await reopened.verify() == len(names)
    assert await collect(reopened, b"file-01") == sorted(
        kv for kv in names.items() if kv[0] >= b"file-01"
    )
    assert await reopened.get(b"file-00003-" + b"x" * 3) == b"3"
    assert await reopened.get(b"nope") is None


async def corrupt(segments: Segments, location: Location, position: int) -> None:
    name = segment_name(location.object)
    data = bytearray(await segments.store.get(name))
    data[location.offset + position] ^= 0x40
    await segments.store.put(name, bytes(data))


@pytest.mark.parametrize("where", ["root", "leaf", "trailer"])
async def test_corrupt_page_names_its_location(where):
    segments = await Segments().open()
    root = await build(segments, ((k, k * 7) for k in range(2000)), page_bytes=512)
    levels = [kv async for kv in int_tree(segments, root, PageCache(0), 512).page_locations()]
    location = root if where == "root" else next(loc for level, loc in levels if level == 0)
    position = location.length - 3 if where == "trailer" else location.length // 2
    await corrupt(segments, location, position)
    tree = int_tree(segments, root, PageCache(1 << 20), 512)
    with pytest.raises(LayoutError) as caught:
        await collect(tree)
    assert f"object {object_name(location.object)} at {location.offset}" in str(caught.value)


@pytest.mark.parametrize(
    "payload",
    [
        [0, 1, [1, 2], [3]],  # values missing
        [0, 2, [2, 1], [3, 4]],  # keys out of order
        [0, 1, ["a"], [3]],  # key of the wrong type
        [1, 1, [5], [[1, 0, 10], "x"]],  # child that is not a location
        [0, None, [1], [1]],  # a root without its entry count
        [99, 1, [], []],  # absurd level
        "not a page",
    ],
)
async def test_malformed_page_is_a_layout_error(payload):
    segments = await Segments().open()
    data = frame(RecordType.BTREE_PAGE, 1, payload)
    await segments.store.put(segment_name(9), data)
    location = Location(9, 0, len(data))
    tree = int_tree(segments, location, PageCache(1 << 20), 512)
    with pytest.raises(LayoutError, match=f"object {object_name(9)} at 0"):
        await tree.get(1)
        await collect(tree)


async def test_child_at_wrong_level_is_a_layout_error():
    segments = await Segments().open()
    leaf = frame(RecordType.BTREE_PAGE, 1, [1, None, [1], [[9, 0, 1], [9, 0, 1]]])
    await segments.store.put(segment_name(9), leaf)
    root = frame(RecordType.BTREE_PAGE, 1, [1, 2, [5], [[9, 0, len(leaf)], [9, 0, len(leaf)]]])
    await segments.store.put(segment_name(10), root)
    tree = int_tree(segments, Location(10, 0, len(root)), PageCache(1 << 20), 512)
    with pytest.raises(LayoutError, match="level"):
        await tree.get(1)


async def test_cache_stays_within_its_bound():
    segments = await Segments().open()
    root = await build(segments, ((k * 3, k) for k in range(50_000)))
    cache = PageCache(64 << 10)
    tree = int_tree(segments, root, cache, 8192)
    seen = 0
    async for key, value in tree.items():
        assert key == seen * 3 and value == seen
        seen += 1
        if seen % 500 == 0:
            assert cache.nbytes <= cache.max_bytes
    assert seen == 50_000 == await tree.count()
    assert cache.evictions > 0 and cache.nbytes <= cache.max_bytes
    for k in range(0, 150_000, 997):
        assert await tree.get(k) == (k // 3 if k % 3 == 0 else None)
    assert cache.nbytes <= cache.max_bytes


async def test_empty_tree():
    segments = await Segments().open()
    tree = int_tree(segments, None, PageCache(1024), 128)
    assert await tree.get(1) is None and await tree.first() is None and await tree.last() is None
    assert await tree.count() == 0 and await collect(tree) == []
    assert not await tree.delete(1)
    assert tree.flush(SegmentWriter(1)) == FlushResult(None, {})


class SlowSegments(Segments):
    """Every page read lets other tasks run, as a real store does."""

    async def read(self, location: Location) -> bytes:
        await trio.sleep(0)
        return await super().read(location)


async def test_readers_during_a_writer_see_untouched_keys():
    segments = await SlowSegments().open()
    root = await build(segments, ((k, k) for k in range(0, 4000, 2)), page_bytes=256)
    # A tiny cache so readers keep waiting on loads while the writer reshapes pages.
    tree = int_tree(segments, root, PageCache(1024), 256)
    even = list(range(0, 4000, 2))

    async def writer():
        for k in range(1, 4000, 2):
            await tree.put(k, k)
        for k in range(1, 4000, 4):
            await tree.delete(k)

    async def point_reader(offset):
        for k in even[offset::7]:
            assert await tree.get(k) == k

    async def scanner():
        for _ in range(3):
            seen = [k async for k, _ in tree.items() if k % 2 == 0]
            assert seen == even

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        for offset in range(3):
            nursery.start_soon(point_reader, offset)
        nursery.start_soon(scanner)
    assert await tree.verify() == 2000 + 1000
    await segments.flush(tree)
    tree = int_tree(segments, tree.root, PageCache(1024), 256)
    with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="concurrent writers")):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(tree.put, 1, 1)
            nursery.start_soon(tree.put, 2, 2)
