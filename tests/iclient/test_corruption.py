"""Corrupt bytes in the object store: EIO for exactly the files they hold, never a crash.

One byte is flipped in a stored object between two mounts (on disk for
file://, by GET and PUT for Swift); the second mount must answer EIO for the
file whose bytes it was, log the object and offset, keep answering EIO (no
bad bytes cached), and serve every other file as it was written. Data is
checked in 64 KiB blocks, so a damaged byte makes every file with bytes in
its block unreadable there; each file here is fsynced into its own object.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

from iclient.config import MountConfig, Settings
from iclient.reads import BlockCache
from layout.blocksums import BLOCK_SIZE, table
from layout.errors import LayoutError
from layout.naming import object_name
from objfs.settings import SettingsError
from objfs.storage import ObjectStore, open_store
from objfs.storage.localdir import encode_name
from tests import daemons
from tests.deployment import deployed
from tests.mounts import Mounted, iclient, mountpoint, serve_volume

MIB = 1 << 20
A, B = os.urandom(2 * MIB), os.urandom(2 * MIB)
C = b"a small file\n" * 10
LOG_SECONDS = 10.0


def _write(path: Path, data: bytes) -> None:
    """Write and fsync, which seals the segment: the next file goes into another object."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _errno_of(action) -> int:
    with pytest.raises(OSError) as caught:
        action()
    return caught.value.errno


def _stored(url: str) -> dict[str, bytes]:
    """Every object of the volume, by name."""

    async def get_all() -> dict[str, bytes]:
        async with open_store(url) as store:
            return {info.name: await store.get(info.name) async for info in store.list()}

    return trio.run(get_all)


def _flip(url: str, name: str, offset: int) -> None:
    """Flip the bits of one byte of a stored object: in place on disk, or GET and PUT."""
    if url.startswith("file://"):
        with open(Path(url.removeprefix("file://"), *encode_name(name)), "r+b") as f:
            f.seek(offset)
            byte = f.read(1)
            f.seek(offset)
            f.write(bytes([byte[0] ^ 0xFF]))
        return

    async def get_and_put() -> None:
        async with open_store(url) as store:
            data = bytearray(await store.get(name))
            data[offset] ^= 0xFF
            await store.put(name, bytes(data))

    trio.run(get_and_put)


def _logged(mounted: Mounted, pattern: str) -> str:
    """The first ERROR line of the iclient log matching `pattern`, waited for with a deadline."""
    deadline = time.monotonic() + LOG_SECONDS
    while True:
        for line in mounted.log.read_text(errors="replace").splitlines():
            if " ERROR " in line and re.search(pattern, line):
                return line
        assert time.monotonic() < deadline, f"no ERROR line matching {pattern!r} in the log"
        time.sleep(0.05)


@pytest.mark.parametrize("backend", ["file", "swift"])
def test_a_corrupt_data_block_is_eio_for_its_file_only(request, tmp_path, backend):
    with deployed(request, tmp_path) as deployment:
        url, imgr = serve_volume(deployment, backend)
        with mountpoint() as path, iclient(deployment, imgr, url, path):
            for name, data in (("a", A), ("b", B), ("c", C)):
                _write(path / name, data)
        # A's data: the object holding a stretch from its middle, found by content.
        marker = A[MIB : MIB + 4096]
        hits = [(name, data.find(marker)) for name, data in _stored(url).items() if marker in data]
        assert len(hits) == 1, hits
        name, at = hits[0][0], hits[0][1] + 100
        _flip(url, name, at)
        bad_block = at - at % BLOCK_SIZE
        with mountpoint() as path, iclient(deployment, imgr, url, path) as mounted:
            assert _errno_of((path / "a").read_bytes) == errno.EIO
            line = _logged(mounted, rf"object {name}\b")
            assert f"offset {bad_block} " in line, line
            assert (path / "b").read_bytes() == B
            assert (path / "c").read_bytes() == C
            assert _errno_of((path / "a").read_bytes) == errno.EIO  # nothing bad was cached
            fd = os.open(path / "a", os.O_RDONLY)
            try:  # the bytes of A away from the bad block are still there
                assert os.pread(fd, 4096, 0) == A[:4096]
                assert _errno_of(lambda: os.pread(fd, 4096, MIB)) == errno.EIO
            finally:
                os.close(fd)
            assert mounted.proc.poll() is None


@pytest.mark.parametrize("backend", ["file", "swift"])
def test_a_corrupt_inode_head_or_extent_page_is_eio_for_its_file_only(request, tmp_path, backend):
    with deployed(request, tmp_path) as deployment:
        url, imgr = serve_volume(deployment, backend)
        with mountpoint() as path, iclient(deployment, imgr, url, path) as mounted:
            # Each fsync seals a segment: "fine" shares no object with what is damaged.
            for name, data in (("fine", C), ("head", b"h" * 100), ("extents", b"e" * 100)):
                _write(path / name, data)
            shown = {
                name: httpx.get(
                    f"http://127.0.0.1:{mounted.http_port}/inode/{os.stat(path / name).st_ino}",
                    timeout=10,
                ).json()
                for name in ("head", "extents")
            }
        assert not any(inode["dirty"] for inode in shown.values())
        head, page = shown["head"]["loaded_from"], shown["extents"]["payload"]
        for location in (head, page):
            _flip(
                url, object_name(location["object"]), location["offset"] + location["length"] // 2
            )
        with mountpoint() as path, iclient(deployment, imgr, url, path) as mounted:
            assert _errno_of(lambda: os.stat(path / "head")) == errno.EIO
            assert _errno_of((path / "extents").read_bytes) == errno.EIO
            assert (path / "fine").read_bytes() == C
            for location in (head, page):
                name = object_name(location["object"])
                _logged(mounted, rf"object {name} at {location['offset']}\b")
            assert _errno_of(lambda: os.stat(path / "head")) == errno.EIO
            assert _errno_of((path / "extents").read_bytes) == errno.EIO
            assert mounted.proc.poll() is None


# ------------------------------------------------------- the read cache and its setting


async def _put_sealed(store: ObjectStore, number: int, data: bytes, flip: int | None) -> None:
    stored = bytearray(data + table(data))
    if flip is not None:
        stored[flip] ^= 0x01  # after the digests were taken
    await store.put(object_name(number), bytes(stored))


async def test_a_bad_piece_fails_only_the_reads_that_touch_it_and_is_never_cached():
    data = os.urandom(3 * MIB)
    bad = MIB + 3 * BLOCK_SIZE  # inside the second 1 MiB read block
    async with open_store("mem://corrupt-piece") as store:
        await store.ensure_container()
        await _put_sealed(store, 3, data, bad + 5)
        cache = BlockCache(store, {}, block_bytes=MIB)
        message = rf"offset {bad} fails its checksum \(object {object_name(3)}\)"
        for _ in range(2):
            with pytest.raises(LayoutError, match=message):
                await cache.read(3, bad, 20)
        with pytest.raises(LayoutError, match=message):
            await cache.read(3, 0, len(data))
        # The same read block's good pieces, and the other blocks, read as written.
        assert await cache.read(3, MIB, bad - MIB) == data[MIB:bad]
        assert await cache.read(3, bad + BLOCK_SIZE, 100) == data[bad + BLOCK_SIZE :][:100]
        assert await cache.read(3, 0, MIB) == data[:MIB]
        assert await cache.read(3, 2 * MIB, MIB) == data[2 * MIB :]
        assert cache.nbytes == 2 * MIB  # the damaged block was never kept


async def test_first_readers_of_an_object_share_one_table_load():
    data = os.urandom(4 * MIB)
    async with open_store("mem://shared-table") as store:
        await store.ensure_container()
        await _put_sealed(store, 3, data, None)
        heads, release, real_head = [], trio.Event(), store.head

        async def gated_head(name: str):
            heads.append(name)
            await release.wait()
            return await real_head(name)

        store.head = gated_head
        cache = BlockCache(store, {}, block_bytes=MIB)
        got = {}

        async def read(block: int) -> None:
            got[block] = await cache.read(3, block * MIB, MIB)

        async with trio.open_nursery() as nursery:
            for block in range(4):
                nursery.start_soon(read, block)
            await trio.testing.wait_all_tasks_blocked()
            release.set()
        assert heads == [object_name(3)]
        assert b"".join(got[block] for block in range(4)) == data


async def test_a_cold_object_streams_with_read_ahead_past_its_end(tmp_path):
    data = os.urandom(2 * MIB + 12345)  # the last block is short and the table follows it
    async with open_store(f"file://{tmp_path}") as store:  # a store whose GETs take time
        await store.ensure_container()
        await _put_sealed(store, 3, data, None)
        cache = BlockCache(store, {}, block_bytes=MIB, readahead=8)
        async with trio.open_nursery() as nursery:
            await nursery.start(cache.run)
            got = [await cache.read(3, at, 4096) for at in range(0, len(data) - 4096, 4096)]
            await trio.testing.wait_all_tasks_blocked()  # the read-ahead past the end is done
            with pytest.raises(LayoutError, match="read 0 bytes, expected 10"):
                await cache.read(3, len(data), 10)  # an extent can never reach into the table
            nursery.cancel_scope.cancel()
        assert b"".join(got) == data[: len(got) * 4096]
        assert cache.nbytes == len(data)  # the blocks, without the table


def test_block_kib_must_be_a_multiple_of_the_checksum_block():
    settings = Settings(volume="v", store="mem://v", block_kib=100)
    with pytest.raises(SettingsError, match="block_kib must be a multiple of 64"):
        MountConfig.from_settings(settings)
    assert MountConfig.from_settings(Settings(volume="v", store="mem://v", block_kib=128))
    argv = [daemons.command("iclient"), "run", "/tmp", "--volume", "v", "--store", "mem://v",
            "--block-kib", "100"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == ["iclient: block_kib must be a multiple of 64"]
