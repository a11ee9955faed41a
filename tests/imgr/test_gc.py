"""Garbage collection on every backend: after 10,000 inodes come and go, the container
holds exactly what the live state refers to.

The heads are real records in real objects (imgr reads a head when its inode
is deleted, to release the payload bytes its accounting lists), each pointing
at a real payload object. What the live state refers to is worked out here
independently, by walking the stored inode table from the newest checkpoint
(backed up in object 0) and decoding every live head.
"""

from __future__ import annotations

import pytest

from imgr.state import new_table
from layout.codec import Location
from layout.naming import object_name
from layout.pagecache import PageCache
from layout.records import InodeHead
from objfs.objects import StoreReader
from objfs.storage import open_store
from tests.imgr.conftest import IMGR_BACKENDS
from tests.imgr.helpers import (
    BACKUP,
    formatted,
    head,
    mount,
    newest_checkpoint,
    object_names,
    put_object,
    status,
    wait_until,
    write_heads,
)

INODES = 10_000
BATCH = 500
PAYLOAD = 10  # payload bytes per inode


async def live_objects(url: str) -> tuple[set[int], dict[int, Location], dict[int, int]]:
    """From the newest checkpoint: (objects it refers to, inode table, superblock counts)."""
    record, sb = await newest_checkpoint(url)
    async with open_store(url) as store:
        reader = StoreReader(store)
        table = new_table(sb.inode_table, reader, PageCache(1 << 20))
        objects = {record.superblock.object}
        objects |= {loc.object async for _, loc in table.page_locations()}
        entries = {inode: loc async for inode, loc in table.items()}
        for inode, loc in entries.items():
            decoded = InodeHead.decode(await reader.read(loc), f"head of inode {inode}")
            assert decoded.inode == inode
            objects |= {loc.object, *decoded.accounting}
    return objects, entries, sb.referenced


async def create(client, url: str, inodes: list[int]) -> dict[int, Location]:
    """One batch: real heads in one new object, payload bytes in another."""
    head_obj = await client.fetch_nonces("object", 2)
    payload_obj = head_obj + 1
    payload = PAYLOAD * len(inodes)
    await put_object(url, payload_obj, b"p" * payload)
    heads = [head(i, {payload_obj: PAYLOAD}) for i in inodes]
    where, size = await write_heads(url, head_obj, heads)
    await client.put_entries(
        where,
        objects={head_obj: size, payload_obj: payload},
        referenced={payload_obj: payload},
    )
    return where


@pytest.mark.parametrize("backend", IMGR_BACKENDS)
async def test_container_holds_exactly_the_live_objects_after_gc(deployment, backend):
    url = formatted(deployment, backend)
    d = deployment.start_imgr({"v1": url})
    async with mount(deployment, d, "v1", url) as c:
        first = await c.fetch_nonces("inode", INODES)
        inodes = list(range(first, first + INODES))
        heads: dict[int, Location] = {}
        for n in range(0, INODES, BATCH):
            heads.update(await create(c, url, inodes[n : n + BATCH]))
        root = await c.get_entry(1)
        payload_of = {i: loc.object + 1 for i, loc in heads.items()}
        mine = {loc.object for loc in heads.values()} | set(payload_of.values())

        # Kept: three inodes from three batches, and one whose head is rewritten
        # (its old head object then holds nothing live; its payload object does).
        keep = [inodes[0], inodes[4_999], inodes[9_999]]
        rewritten = inodes[7_250]
        obj = await c.fetch_nonces("object", 1)
        where, size = await write_heads(
            url, obj, [head(rewritten, {payload_of[rewritten]: PAYLOAD})]
        )
        await c.put_entries(where, objects={obj: size})
        heads.update(where)
        mine.add(obj)
        alive = {1: root, **{i: heads[i] for i in [*keep, rewritten]}}
        mine_alive = {heads[i].object for i in alive if i != 1} | {
            payload_of[i] for i in alive if i != 1
        }

        doomed = [i for i in inodes if i not in alive]
        for i in doomed[:5]:
            await c.delete_entry(i)
        for n in range(5, len(doomed), BATCH):
            await c.put_entries({}, delete=doomed[n : n + BATCH])
        await c.flush()
        await c.flush()

        async def collected() -> dict | None:
            shown = await status(d, "/volume/v1")
            gc = shown["gc"]
            return None if gc["pending"] or gc["deleting"] else shown

        shown = await wait_until(collected, 60, "garbage collected")
        assert shown["inodes"] == len(alive)

    expected, entries, referenced = await live_objects(url)
    assert entries == alive
    listing = await object_names(url)
    assert listing == {BACKUP} | {object_name(o) for o in expected}
    # imgr's own accounting agrees: everything but the superblock's object is referenced.
    assert set(referenced) | {shown["gc"]["superblock_object"]} == expected
    # Of the workload's objects, exactly those of the live heads and their payloads are left.
    assert listing & {object_name(o) for o in mine} == {object_name(o) for o in mine_alive}
    assert len(mine_alive) == 8  # 3 kept heads and payloads, 1 rewritten head and payload
