"""The write-back buffer of the iclient library, in-process over a real imgr (no FUSE).

Each test mounts the volume with `Mount.open` and holds the segment uploads
back (a store wrapper whose `put` waits for the test), so what the buffer
does while nothing reaches the store is observable: writers wait at the
memory bound, overflow spills to the cache directory, commits come on age,
and an unmount waits for every upload.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from iclient.api import ROOT_CONTEXT, ROOT_INODE
from iclient.config import MIB, MountConfig, Settings
from iclient.mount import Mount
from iclient.segments import Segments
from objfs.rpc.errors import NotFound
from tests.deployment import Deployment, ImgrDaemon, deployed
from tests.mounts import VOLUME, serve_volume

CHUNK = 256 << 10
QUIET = 0.2  # seconds every task must stay blocked for a writer to count as stuck


@pytest.fixture
def volume(request, tmp_path) -> Iterator[tuple[Deployment, str, ImgrDaemon]]:
    with deployed(request, tmp_path) as deployment:
        url, imgr = serve_volume(deployment, "file")
        yield deployment, url, imgr


@pytest.fixture
def make_config(volume, tmp_path) -> Callable[..., MountConfig]:
    deployment, url, imgr = volume

    def make(cache: str = "cache", **sizes: object) -> MountConfig:
        settings = Settings(
            imgr=f"127.0.0.1:{imgr.port}",
            volume=VOLUME,
            token=deployment.token(url),
            store=url,
            mountpoint="/nonexistent-not-used",
            cache_dir=str(tmp_path / cache),
            **sizes,
        )
        return MountConfig.from_settings(settings)

    return make


class HeldStore:
    """The mount's store, with every `put` waiting until the test lets uploads through."""

    def __init__(self, store: object) -> None:
        self._store = store
        self.released = trio.Event()
        self.waiting = 0  # puts parked here right now
        self.stored: list[str] = []  # puts that reached the real store and returned

    async def put(self, name: str, data: object, **options: object) -> None:
        self.waiting += 1
        try:
            await self.released.wait()
        finally:
            self.waiting -= 1
        await self._store.put(name, data, **options)
        self.stored.append(name)

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


@asynccontextmanager
async def held_uploads(mount: Mount) -> AsyncIterator[HeldStore]:
    """Hold `mount`'s uploads; they are let through at exit whatever happened (so unmount ends)."""
    segments = mount.fs.data.segments
    held = HeldStore(segments.store)
    segments.store = held  # type: ignore[assignment]
    try:
        yield held
    finally:
        held.released.set()


def track_peak_memory(segments: Segments) -> list[int]:
    """[the highest segments.memory seen after any append]; updated as appends happen."""
    peak = [segments.memory]
    append = segments.append

    def counted(record: bytes | bytearray | memoryview) -> object:
        location = append(record)
        peak[0] = max(peak[0], segments.memory)
        return location

    segments.append = counted  # type: ignore[method-assign]
    return peak


async def stuck(progress: Callable[[], int]) -> None:
    """Every task blocked for QUIET seconds, twice, with no `progress` in between."""
    await trio.testing.wait_all_tasks_blocked(cushion=QUIET)
    before = progress()
    await trio.testing.wait_all_tasks_blocked(cushion=QUIET)
    assert progress() == before, "the writer still makes progress"


async def read_all(mount: Mount, inode: int, size: int) -> bytes:
    parts = []
    for offset in range(0, size, 1 << 20):
        parts.append(await mount.fs.read(inode, offset, 1 << 20))
    return b"".join(parts)


def writer(mount: Mount, inode: int, data: bytes, written: list[int], done: trio.Event):
    async def write() -> None:
        for offset in range(0, len(data), CHUNK):
            await mount.fs.write(inode, offset, data[offset : offset + CHUNK], ROOT_CONTEXT)
            written[0] = offset + CHUNK
        done.set()

    return write


async def test_writers_wait_at_the_memory_bound(make_config):
    config = make_config(memory_mib=4, segment_mib=1, disk_mib=0, commit_interval=60.0)
    data = os.urandom(12 * MIB)
    async with Mount.open(config) as mount, held_uploads(mount) as held:
        segments = mount.fs.data.segments
        peak = track_peak_memory(segments)
        inode = (await mount.fs.create(ROOT_INODE, b"big", 0o644, ROOT_CONTEXT)).inode
        written, done = [0], trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer(mount, inode, data, written, done))
            with trio.fail_after(5):
                await stuck(lambda: written[0])
            # Stuck at the bound, with sealed segments whose uploads are parked here.
            assert not done.is_set()
            assert written[0] < len(data)
            assert segments.memory + CHUNK > 4 * MIB
            assert segments.spilled == 0
            assert held.waiting >= 1 and not held.stored
            assert peak[0] <= 4 * MIB + CHUNK, peak[0]
            held.released.set()
            with trio.fail_after(10):
                await done.wait()
        assert held.stored, "the uploads went through"
        assert peak[0] <= 4 * MIB + CHUNK, peak[0]
        with trio.fail_after(10):
            await mount.fs.release(inode)
            await mount.fs.fsync()
            assert await read_all(mount, inode, len(data)) == data


async def test_overflow_spills_to_the_cache_dir(make_config, tmp_path):
    config = make_config(memory_mib=4, segment_mib=1, disk_mib=64, commit_interval=60.0)
    spill = tmp_path / "cache" / "spill"
    data = os.urandom(16 * MIB)
    async with Mount.open(config) as mount, held_uploads(mount) as held:
        segments = mount.fs.data.segments
        peak = track_peak_memory(segments)
        inode = (await mount.fs.create(ROOT_INODE, b"big", 0o644, ROOT_CONTEXT)).inode
        written, done = [0], trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer(mount, inode, data, written, done))
            with trio.fail_after(10):
                await done.wait()
        # All 16 MiB taken while not one upload finished: past the memory, it went to disk.
        assert not held.stored
        assert peak[0] <= 4 * MIB + CHUNK, peak[0]
        assert segments.memory <= 4 * MIB
        assert segments.spilled >= 16 * MIB - segments.memory - CHUNK
        files = sorted(spill.iterdir())
        assert files, "nothing in the spill directory"
        with trio.fail_after(10):  # the last spill may still be on its way to the disk
            while sum(f.stat().st_size for f in spill.iterdir()) != segments.spilled:
                await trio.sleep(0.05)
        # So at least 12 MiB of what reads back comes from the spill files.
        with trio.fail_after(10):
            assert await read_all(mount, inode, len(data)) == data
        assert not held.stored
        held.released.set()
        with trio.fail_after(10):
            await mount.fs.release(inode)
            await mount.fs.fsync()
        assert held.stored
        assert list(spill.iterdir()) == []
        assert segments.spilled == 0
        with trio.fail_after(10):
            assert await read_all(mount, inode, len(data)) == data


async def test_a_change_is_committed_on_age(make_config):
    config = make_config(commit_interval=0.5)
    async with Mount.open(config) as mount:
        fs = mount.fs
        committer = fs.committer
        # No commit can start while the test holds the committer's lock, so the entry
        # is known to be absent right after the write, whenever the interval falls.
        async with committer._lock:
            inode = (await fs.create(ROOT_INODE, b"aged", 0o644, ROOT_CONTEXT)).inode
            await fs.write(inode, 0, b"committed without fsync", ROOT_CONTEXT)
            with pytest.raises(NotFound):
                await mount.imgr.get_entry(inode)
            assert committer.commits == 0
        with trio.fail_after(5):
            while committer.commits < 1:
                await trio.sleep(0.05)
        assert "fsync" not in fs.ops
        location = await mount.imgr.get_entry(inode)
        assert location.length > 0


async def test_unmount_waits_for_every_upload(make_config):
    config = make_config(memory_mib=8, segment_mib=1, commit_interval=60.0)
    data = os.urandom(3 * MIB + 12345)
    left = trio.Event()
    leave = trio.Event()

    async def mounted(task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with Mount.open(config) as mount:
            segments = mount.fs.data.segments
            held = HeldStore(segments.store)
            segments.store = held  # type: ignore[assignment]
            task_status.started((mount, held))
            await leave.wait()
        left.set()

    async with trio.open_nursery() as nursery:
        mount, held = await nursery.start(mounted)
        try:  # on a failure too, the uploads go through so that the unmount can end
            inode = (await mount.fs.create(ROOT_INODE, b"f", 0o644, ROOT_CONTEXT)).inode
            with trio.fail_after(5):
                for offset in range(0, len(data), CHUNK):
                    chunk = data[offset : offset + CHUNK]
                    await mount.fs.write(inode, offset, chunk, ROOT_CONTEXT)
                await mount.fs.release(inode)
            # Leaving the context from the task that entered it; the uploads still held.
            leave.set()
            with trio.fail_after(5):
                await trio.testing.wait_all_tasks_blocked(cushion=QUIET)
                await trio.testing.wait_all_tasks_blocked(cushion=QUIET)
            assert not left.is_set(), "the unmount did not wait for the uploads"
            assert held.waiting >= 1 and not held.stored
            assert mount.fs.data.segments.uploading >= 1
            held.released.set()
            with trio.fail_after(10):
                await left.wait()
            assert held.stored
        finally:
            held.released.set()
    with trio.fail_after(10):
        async with Mount.open(make_config(cache="cache2")) as again:
            found = await again.fs.lookup(ROOT_INODE, b"f")
            assert found.size == len(data)
            assert await read_all(again, found.inode, len(data)) == data
