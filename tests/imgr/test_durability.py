"""A Flush is durable across kill -9 of imgr, and every batch is atomic, on every backend.

imgr only reads a head when an inode is deleted, so the heads here are fake
Locations in objects that were never written.
"""

from __future__ import annotations

import pytest

from layout.codec import Location
from objfs.rpc import NotFound
from tests.imgr.conftest import IMGR_BACKENDS
from tests.imgr.helpers import ONE_TRY, formatted, kill_9, lease_all, mount, status, wait_until

BATCH = 5


async def entry_or_none(client, inode: int) -> Location | None:
    try:
        return await client.get_entry(inode)
    except NotFound:
        return None


@pytest.mark.parametrize("backend", IMGR_BACKENDS)
async def test_flushed_entries_survive_kill_9(deployment, backend):
    url = formatted(deployment, backend)
    d = deployment.start_imgr({"v1": url})
    expected: dict[int, Location] = {}
    async with mount(deployment, d, "v1", url, policy=ONE_TRY) as c:
        first = await c.fetch_nonces("inode", 40)
        inodes = list(range(first, first + 40))
        await lease_all(c, inodes)
        for n in range(0, 40, 8):
            obj = await c.fetch_nonces("object", 1)
            batch = {i: Location(obj, 100 * k, 100) for k, i in enumerate(inodes[n : n + 8])}
            await c.put_entries(batch, objects={obj: 800})
            expected.update(batch)
        # Rewrite some and delete one: the flushed state is the newest, not the first.
        obj = await c.fetch_nonces("object", 1)
        rewritten = {i: Location(obj, 10 * k, 10) for k, i in enumerate(inodes[:4])}
        await c.put_entries(rewritten, objects={obj: 40})
        expected.update(rewritten)
        await c.put_entries({}, delete=[inodes[-1]])
        del expected[inodes[-1]]
        await c.flush()
        kill_9(d)

    d = deployment.start_imgr({"v1": url})
    async with mount(deployment, d, "v1", url) as c:
        for inode, location in expected.items():
            assert await c.get_entry(inode) == location
        assert await entry_or_none(c, inodes[-1]) is None
        # Numbers handed out before the crash are never handed out again.
        assert await c.fetch_nonces("inode", 1) > inodes[-1]
        assert await c.fetch_nonces("object", 1) > obj


@pytest.mark.parametrize("backend", IMGR_BACKENDS)
async def test_unflushed_batches_are_all_or_nothing_after_kill_9(deployment, backend):
    url = formatted(deployment, backend)
    d = deployment.start_imgr({"v1": url})
    count = 40
    batches: list[tuple[dict[int, Location], dict[int, Location | None]]] = []
    async with mount(deployment, d, "v1", url, policy=ONE_TRY) as c:
        first = await c.fetch_nonces("inode", count * (BATCH + 1))
        olds = list(range(first, first + count))
        news = list(range(first + count, first + count * (BATCH + 1)))
        await lease_all(c, olds + news)
        obj = await c.fetch_nonces("object", 1)
        flushed = {i: Location(obj, 10 * k, 10) for k, i in enumerate(olds)}
        await c.put_entries(flushed, objects={obj: 10 * count})
        await c.flush()

        async def put_batch(b: int) -> None:
            """BATCH new inodes and a rewrite of one flushed inode."""
            obj = await c.fetch_nonces("object", 1)
            inodes = [*news[b * BATCH : (b + 1) * BATCH], olds[b]]
            after = {i: Location(obj, 10 * k, 10) for k, i in enumerate(inodes)}
            before = {i: flushed.get(i) for i in inodes}
            await c.put_entries(after, objects={obj: 10 * len(inodes)})
            batches.append((after, before))

        for b in range(count // 2):
            await put_batch(b)
        # Let a periodic checkpoint take some of them (it may or may not take all).
        sequence = (await status(d, "/volume/v1"))["checkpoint"]["sequence"]
        await wait_until(
            lambda: checkpoint_after(d, sequence), 10, "a periodic checkpoint of the batches"
        )
        for b in range(count // 2, count):
            await put_batch(b)
        kill_9(d)

    d = deployment.start_imgr({"v1": url})
    outcomes = []
    async with mount(deployment, d, "v1", url) as c:
        for b, (after, before) in enumerate(batches):
            found = {i: await entry_or_none(c, i) for i in after}
            assert found in (after, before), f"batch {b} half applied: {found}"
            outcomes.append(found == after)
    print("OUTCOMES", outcomes)
    # A checkpoint holds every batch applied before it: what survived is a prefix.
    assert outcomes == sorted(outcomes, reverse=True), outcomes


async def checkpoint_after(daemon, sequence: int) -> bool:
    return (await status(daemon, "/volume/v1"))["checkpoint"]["sequence"] > sequence
