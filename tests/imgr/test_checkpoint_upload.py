"""The inode table stays readable while a checkpoint's segment is being uploaded.

In process, on mem://, with no page cache at all: every read of the table
goes to the segment the checkpoint has just flushed the tree into, which is
not stored until the upload ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trio

from ickpt.logstore import LogStore
from imgr.auth import authenticator
from imgr.format import format_volume
from imgr.volume import Batch, Timing, Volume
from layout.codec import Location
from layout.naming import object_name
from objfs.storage.mem import MemStore

SECRET = "s"


class GatedStore(MemStore):
    """Holds back every segment put while `gate` is closed."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.gate: trio.Event | None = None
        self.waiting = trio.Event()

    async def put(self, name: str, data, *, if_absent: bool = False) -> None:
        if self.gate is not None and name != object_name(0):
            self.waiting.set()
            await self.gate.wait()
        await super().put(name, data, if_absent=if_absent)


@dataclass
class FakeSession:
    client_id: str = "client"
    peer: str = "test"


async def test_table_pages_are_read_from_a_segment_still_uploading(tmp_path: Path):
    store = GatedStore("checkpoint-upload")
    ckpt = await LogStore.open(tmp_path / "ckpt.log")
    try:
        await format_volume(store, ckpt, "v")
        volume = Volume(
            "v",
            store.url,
            store,
            ckpt,
            authenticator(store.url, SECRET),
            me="test",
            timing=Timing(checkpoint_interval=3600),
            cache_bytes=0,
            session_for=lambda client_id: None,
        )
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                await nursery.start(volume.serve)
                mount = await volume.mount(FakeSession(), SECRET)
                inode = await volume.fetch_nonces(mount.id, "inode", 1)
                obj = await volume.fetch_nonces(mount.id, "object", 1)
                head = Location(obj, 0, 10)
                await volume.put_entries(mount.id, Batch({inode: head}, [], {obj: 10}, {}, {}))
                store.gate = trio.Event()
                nursery.start_soon(volume.flush)
                await store.waiting.wait()  # the checkpoint's segment is uploading now
                assert await volume.get_entry(mount.id, inode) == head
                store.gate.set()
                store.gate = None
                await volume.flush()
                assert await volume.get_entry(mount.id, inode) == head
                nursery.cancel_scope.cancel()
    finally:
        await ckpt.aclose()
