"""One Volume in process, on mem://, where a test controls the store exactly."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from ickpt.logstore import LogStore
from imgr.auth import authenticator
from imgr.format import format_volume
from imgr.volume import Batch, Timing, Volume
from layout.codec import Location
from layout.naming import object_name
from objfs.rpc import InvalidArgument, NotFound, RpcUnavailable
from objfs.storage.mem import MemStore

SECRET = "s"


class GatedStore(MemStore):
    """Holds back every segment put while `gate` is closed; fails them with `error`."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.gate: trio.Event | None = None
        self.waiting = trio.Event()
        self.error: Exception | None = None

    async def put(self, name: str, data, *, if_absent: bool = False) -> None:
        if self.error is not None:
            raise self.error
        if self.gate is not None and name != object_name(0):
            self.waiting.set()
            await self.gate.wait()
        await super().put(name, data, if_absent=if_absent)


@dataclass
class FakeSession:
    client_id: str = "client"
    peer: str = "test"
    upcalls: list = field(default_factory=list)

    async def upcall(self, method, args, timeout=None):
        self.upcalls.append((method, args))


class FakeSessions:
    """The RPC server's sessions as Volume sees them; a test connects them."""

    def __init__(self) -> None:
        self.live: dict[str, FakeSession] = {}
        self.waiting = trio.Event()
        self._arrival = trio.Event()

    async def wait_session(self, client_id: str) -> FakeSession:
        while client_id not in self.live:
            self.waiting.set()
            await self._arrival.wait()
        return self.live[client_id]

    def connect(self, session: FakeSession) -> None:
        self.live[session.client_id] = session
        self._arrival.set()
        self._arrival = trio.Event()


def volume_on(
    store: GatedStore, ckpt: LogStore, sessions: FakeSessions | None = None, **timing: float
) -> Volume:
    return Volume(
        "v",
        store.url,
        store,
        ckpt,
        authenticator(store.url, SECRET),
        me="test",
        timing=Timing(**{"checkpoint_interval": 3600, **timing}),
        cache_bytes=0,
        sessions=sessions or FakeSessions(),
    )


@asynccontextmanager
async def formatted(tmp_path: Path, name: str):
    store = GatedStore(name)
    ckpt = await LogStore.open(tmp_path / "ckpt.log")
    try:
        await format_volume(store, ckpt, "v")
        yield store, ckpt
    finally:
        await ckpt.aclose()


@asynccontextmanager
async def served_volume(tmp_path: Path, name: str):
    async with formatted(tmp_path, name) as (store, ckpt):
        yield store, volume_on(store, ckpt)


async def put_one(volume: Volume, mount_id: str | None = None) -> tuple[str, int, Location]:
    mount = volume.mounts.get(mount_id) if mount_id else await volume.mount(FakeSession(), SECRET)
    inode = await volume.fetch_nonces(mount.id, "inode", 1)
    obj = await volume.fetch_nonces(mount.id, "object", 1)
    head = Location(obj, 0, 10)
    await volume.put_entries(mount.id, Batch({inode: head}, [], {obj: 10}, {}, {}))
    return mount.id, inode, head


async def test_table_pages_are_read_from_a_segment_still_uploading(tmp_path: Path):
    # No page cache at all: every read of the table goes to the segment the
    # checkpoint has just flushed the tree into, not stored until the upload ends.
    async with served_volume(tmp_path, "checkpoint-upload") as (store, volume):
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                await nursery.start(volume.serve)
                mount, inode, head = await put_one(volume)
                store.gate = trio.Event()
                nursery.start_soon(volume.flush)
                await store.waiting.wait()  # the checkpoint's segment is uploading now
                assert await volume.get_entry(mount, inode) == head
                store.gate.set()
                store.gate = None
                await volume.flush()
                assert await volume.get_entry(mount, inode) == head
                nursery.cancel_scope.cancel()


async def test_a_failing_checkpoint_stops_only_its_volume(tmp_path: Path):
    async with served_volume(tmp_path, "checkpoint-fails") as (store, volume):
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                await nursery.start(volume.serve)
                await put_one(volume)
                store.error = RuntimeError("a bug, not a storage error")
                with pytest.raises(RpcUnavailable, match="failed: _checkpoint_loop failed"):
                    await volume.flush()
            # The nursery ended without an error: the imgr around it goes on.
        assert volume.state_name == "failed"
        assert volume.summary()["reason"].startswith("_checkpoint_loop failed")


async def renewing(volume: Volume, mount_id: str) -> None:
    while True:
        volume.renew(mount_id)
        await trio.sleep(0.05)


async def test_orphans_survive_a_restart_until_their_mounts_had_time_to_reopen(tmp_path: Path):
    # Deleted while open, then imgr stops dead: the new imgr knows no open counts.
    async with formatted(tmp_path, "orphans") as (store, ckpt):
        with trio.fail_after(20):
            before = volume_on(store, ckpt, mount_ttl=3600)
            async with trio.open_nursery() as nursery:
                await nursery.start(before.serve)
                mount, reopened, _ = await put_one(before)
                _, closed, _ = await put_one(before, mount)
                for inode in (reopened, closed):
                    await before.adjust_open(mount, inode, 1)
                    await before.delete_entry(mount, inode)
                await before.flush()
                nursery.cancel_scope.cancel()  # no clean stop
            after = volume_on(store, ckpt, mount_ttl=0.5)
            async with trio.open_nursery() as nursery:
                await nursery.start(after.serve)
                again = (await after.mount(FakeSession(), SECRET)).id
                nursery.start_soon(renewing, after, again)
                await after.adjust_open(again, reopened, 1)
                assert await after.get_entry(again, closed)  # still readable meanwhile
                while closed in after.state.orphans:
                    await trio.sleep(0.05)
                with pytest.raises(NotFound):
                    await after.get_entry(again, closed)
                assert await after.get_entry(again, reopened)
                await after.adjust_open(again, reopened, -1)
                with pytest.raises(NotFound):
                    await after.get_entry(again, reopened)
                nursery.cancel_scope.cancel()


async def test_an_open_inode_changed_and_deleted_in_one_batch_is_an_orphan_until_closed(
    tmp_path: Path,
):
    async with served_volume(tmp_path, "changed-and-deleted") as (_, volume):
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                await nursery.start(volume.serve)
                mount = (await volume.mount(FakeSession(), SECRET)).id
                inode = await volume.fetch_nonces(mount, "inode", 1)  # never in the table yet
                obj = await volume.fetch_nonces(mount, "object", 1)
                head = Location(obj, 0, 10)
                both = Batch({inode: head}, [inode], {obj: 10}, {}, {})
                with pytest.raises(InvalidArgument, match="must be open by its mount"):
                    await volume.put_entries(mount, both)
                await volume.adjust_open(mount, inode, 1)
                await volume.put_entries(mount, both)
                assert inode in volume.state.orphans
                assert await volume.get_entry(mount, inode) == head  # readable while open
                with pytest.raises(InvalidArgument, match="deleted twice"):
                    await volume.put_entries(mount, Batch({}, [inode, inode], {}, {}, {}))
                await volume.adjust_open(mount, inode, -1)
                assert inode not in volume.state.orphans
                with pytest.raises(NotFound):
                    await volume.get_entry(mount, inode)
                nursery.cancel_scope.cancel()


async def test_a_holder_reconnecting_when_interrupted_is_waited_for_not_expelled(tmp_path: Path):
    sessions = FakeSessions()
    async with formatted(tmp_path, "reconnecting") as (store, ckpt):
        volume = volume_on(store, ckpt, sessions, lease_timeout=10, mount_ttl=3600)
        holder, asker = FakeSession("holder"), FakeSession("asker")
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                await nursery.start(volume.serve)
                held, inode, _ = await put_one(volume, (await volume.mount(holder, SECRET)).id)
                wants = (await volume.mount(asker, SECRET)).id
                granted = trio.Event()

                async def ask() -> None:
                    assert (await volume.lease(wants, inode, "shared")).value == "shared"
                    granted.set()

                nursery.start_soon(ask)
                await sessions.waiting.wait()  # the holder is not connected right now
                sessions.connect(holder)
                await granted.wait()
                assert holder.upcalls == [("interrupt", {"inode": inode, "to": "shared"})]
                volume.live(held)  # not expelled
                nursery.cancel_scope.cancel()
