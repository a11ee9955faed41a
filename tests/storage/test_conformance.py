"""Every backend behaves the same: the contract of objfs.storage.api, checked for real."""

from __future__ import annotations

import hashlib
import os
import random

import pytest
import trio
import trio.testing

from objfs.storage import (
    AlreadyExists,
    GeneratedPayload,
    InvalidName,
    NotFound,
    ObjectStore,
    open_store,
)

from .backends import TEST_POLICY

KiB, MiB = 1 << 10, 1 << 20


def pattern(size: int, seed: int = 0):
    """A payload recipe: `size` pseudo-random bytes, regenerated on every read."""
    block = random.Random(seed).randbytes(MiB)

    def chunks():
        for index, start in enumerate(range(0, size, MiB)):
            yield (index.to_bytes(8, "big") + block[8:])[: min(MiB, size - start)]

    return GeneratedPayload(size, chunks)


def digest(chunks) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


@pytest.mark.parametrize("size", [0, 1, 64 * KiB, 20 * MiB], ids=["0B", "1B", "64KiB", "20MiB"])
async def test_put_get_head(store: ObjectStore, size: int):
    data = random.Random(size).randbytes(size)
    await store.put("obj", data)
    assert await store.get("obj") == data
    info = await store.head("obj")
    assert (info.name, info.size) == ("obj", size)


async def test_put_replaces(store: ObjectStore):
    await store.put("obj", b"first version")
    await store.put("obj", b"second")
    assert await store.get("obj") == b"second"
    assert (await store.head("obj")).size == 6


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def peak_rss_during(work) -> int:
    """How far resident memory rose above its starting point while `work` ran."""
    start = peak = rss_bytes()
    async with trio.open_nursery() as nursery:

        async def sample():
            nonlocal peak
            while True:
                peak = max(peak, rss_bytes())
                await trio.sleep(0.005)

        nursery.start_soon(sample)
        await work()
        nursery.cancel_scope.cancel()
    return peak - start


async def test_300MiB_object_streams(store: ObjectStore, backend: str):
    payload = pattern(300 * MiB, seed=300)
    read = hashlib.sha256()

    async def transfer():
        await store.put("big", payload)
        async with await store.open("big") as reader:
            async for chunk in reader:
                read.update(chunk)

    growth = await peak_rss_during(transfer)
    assert read.hexdigest() == digest(payload.chunks())
    assert (await store.head("big")).size == 300 * MiB
    if backend != "mem":  # mem:// keeps objects in this process by design
        assert growth < 100 * MiB, f"resident memory rose by {growth / MiB:.0f} MiB"


RANGES = [
    pytest.param(0, 10, slice(0, 10), id="start"),
    pytest.param(400, 100, slice(400, 500), id="middle"),
    pytest.param(990, 10, slice(990, 1000), id="end"),
    pytest.param(10, None, slice(10, 1000), id="rest"),
    pytest.param(995, 100, slice(995, 1000), id="runs-past-end"),
    pytest.param(1000, 10, slice(0, 0), id="at-end"),
    pytest.param(5000, None, slice(0, 0), id="past-end"),
    pytest.param(300, 0, slice(0, 0), id="empty"),
]


@pytest.mark.parametrize("offset,length,expected", RANGES)
async def test_ranges(store: ObjectStore, offset, length, expected):
    data = random.Random(7).randbytes(1000)
    await store.put("ranged", data)
    assert await store.get("ranged", offset, length) == data[expected]


async def test_range_of_missing_object(store: ObjectStore):
    with pytest.raises(NotFound):
        await store.get("absent", 10, 0)
    with pytest.raises(NotFound):
        await store.get("absent", 5000)


async def test_missing_object_is_not_found(store: ObjectStore):
    for operation in (store.get, store.head, store.delete):
        with pytest.raises(NotFound) as caught:
            await operation("no/such object")
        assert caught.value.name == "no/such object"
        assert "no/such object" in str(caught.value)


async def test_delete(store: ObjectStore):
    await store.put("doomed", b"x")
    await store.delete("doomed")
    with pytest.raises(NotFound):
        await store.head("doomed")
    assert [info.name async for info in store.list()] == []


async def put_many(store: ObjectStore, names: list[str], parallel: int = 32) -> None:
    pending = iter(names)

    async def worker():
        for name in pending:
            await store.put(name, name.encode())

    async with trio.open_nursery() as nursery:
        for _ in range(parallel):
            nursery.start_soon(worker)


async def test_listing_12000_objects_by_prefix(store: ObjectStore):
    a_names = [f"list/a/{i:05d}" for i in range(10_000)]
    b_names = [f"list/b/{i:04d}" for i in range(2_000)]
    await put_many(store, [*a_names, *b_names, "listing", "other/1"])

    everything = [info async for info in store.list("list/")]
    assert [info.name for info in everything] == a_names + b_names
    assert all(info.size == len(info.name) for info in everything)
    assert [info.name async for info in store.list("list/b/", page_size=700)] == b_names
    assert [info.name async for info in store.list("list", page_size=5000)] == [
        *a_names,
        *b_names,
        "listing",
    ]

    page = await store.list_page("list/a/", limit=1000)
    assert [i.name for i in page.items] == a_names[:1000]
    assert page.next_start_after == a_names[999]
    page = await store.list_page("list/a/", start_after=a_names[9499], limit=1000)
    assert [i.name for i in page.items] == a_names[9500:]
    assert page.next_start_after is None
    assert (await store.list_page("nothing-here/")).items == []


async def test_list_order_is_utf8_byte_order(store: ObjectStore):
    # U+FF21 and U+E000 sort before U+1F600 in UTF-8 but after it in UTF-16 (Azure's order).
    names = ["b", "a b", "a", "Z", "é", "z", "日本", "a/b", "a-b", "😀", "Ａ", "\ue000x"]
    names += ["x😀", "xＡ"]
    await put_many(store, names)
    listed = [info.name async for info in store.list()]
    assert listed == sorted(names, key=lambda n: n.encode())


SPECIAL_NAMES = [
    pytest.param("with spaces  and  more spaces", id="spaces"),
    pytest.param("ünïcødé/日本語/😀 emoji", id="unicode"),
    pytest.param("d/" + "ü" * 499, id="1000-bytes-unicode"),
    pytest.param("n" * 1000, id="1000-bytes"),
    pytest.param("a%2Fb/%+/.hidden/x..y/#?&=+", id="punctuation"),
]


@pytest.mark.parametrize("name", SPECIAL_NAMES)
async def test_special_names(store: ObjectStore, name: str):
    await store.put(name, name.encode())
    assert await store.get(name) == name.encode()
    assert (await store.head(name)).size == len(name.encode())
    assert [info.name async for info in store.list()] == [name]
    assert [info.name async for info in store.list(name[:3])] == [name]
    await store.delete(name)
    assert [info.name async for info in store.list()] == []


async def test_object_and_its_path_prefix_coexist(store: ObjectStore):
    await store.put("a", b"1")
    await store.put("a/b", b"2")
    assert (await store.get("a"), await store.get("a/b")) == (b"1", b"2")


BAD_NAMES = ["", "/lead", "trail/", "a//b", "./x", "a/../b", "x\x00", "x\uffff", "n" * 1025]


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_invalid_names_refused_before_any_request(store: ObjectStore, name: str):
    with pytest.raises(InvalidName):
        await store.put(name, b"x")


async def test_put_if_absent(store: ObjectStore):
    await store.put("once", b"first", if_absent=True)
    with pytest.raises(AlreadyExists) as caught:
        await store.put("once", b"second", if_absent=True)
    assert caught.value.name == "once"
    assert await store.get("once") == b"first"


async def race_put_if_absent(writers: list[ObjectStore], name: str, bodies: list[bytes]):
    """Start one create-if-absent per writer at the same moment; who won?"""
    outcome: list[str] = ["", ""]
    gate = trio.Event()

    async def writer(i: int):
        await gate.wait()
        try:
            await writers[i].put(name, bodies[i], if_absent=True)
            outcome[i] = "won"
        except AlreadyExists:
            outcome[i] = "lost"

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer, 0)
        nursery.start_soon(writer, 1)
        await trio.testing.wait_all_tasks_blocked()
        gate.set()
    return outcome


@pytest.mark.parametrize("size", [16, 2 * MiB], ids=["small", "2MiB"])
async def test_racing_put_if_absent_exactly_one_wins(open_test_store, size: int):
    writers = [await open_test_store(), await open_test_store()]
    bodies = [bytes([i + 1]) * size for i in range(2)]
    for round_ in range(25):
        name = f"race/{round_}"
        outcome = await race_put_if_absent(writers, name, bodies)
        assert sorted(outcome) == ["lost", "won"], f"round {round_}: {outcome}"
        assert await writers[0].get(name) == bodies[outcome.index("won")]


async def test_missing_container_is_not_found(store_url: str, backend: str):
    store = open_store(store_url, TEST_POLICY)  # never ensure_container()
    try:
        with pytest.raises(NotFound):
            await store.put("x", b"1")
        with pytest.raises(NotFound):
            await store.list_page()
    finally:
        await store.aclose()
