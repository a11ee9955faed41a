"""One mounted volume as a library: imgr session, object store, buffers, and the FileSystem.

    async with Mount.open(config) as mount:
        await mount.fs.mkdir(ROOT_INODE, b"d", 0o755, ROOT_CONTEXT)

Leaving the context commits everything, waits for every upload, and makes
it durable in a checkpoint before the imgr session ends; so an unmount
returns only once nothing is lost.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from iclient.commit import Committer, Gate
from iclient.config import MountConfig
from iclient.files import FileData
from iclient.fs import FileSystem
from iclient.inodes import Inodes
from iclient.reads import BlockCache
from iclient.segments import ObjectNumbers, Segments, clear_spill_dir
from imgr.client import ImgrClient
from layout.pagecache import PageCache
from objfs.objects import StoreReader
from objfs.storage import open_store

log = logging.getLogger(__name__)


class Mount:
    def __init__(self, config: MountConfig, imgr: ImgrClient, fs: FileSystem) -> None:
        self.config = config
        self.imgr = imgr
        self.fs = fs
        self.started = trio.current_time()

    @classmethod
    @asynccontextmanager
    async def open(cls, config: MountConfig) -> AsyncIterator[Mount]:
        answer: list[FileSystem] = []

        async def on_interrupt(inode: int, to: str) -> None:
            while not answer:  # an interrupt can only come for numbers we were given
                await trio.sleep(0.01)
            await answer[0].let_go(inode, to)

        store = open_store(config.settings.store)
        async with (
            store,
            ImgrClient.mount(
                config.imgr_host,
                config.imgr_port,
                config.settings.volume,
                config.settings.token,
                on_interrupt,
            ) as imgr,
        ):
            fs = _assemble(config, store, imgr)
            answer.append(fs)
            async with trio.open_nursery() as nursery:
                await nursery.start(fs.data.segments.run)
                await nursery.start(fs.data.blocks.run)
                nursery.start_soon(fs.committer.run)
                try:
                    yield cls(config, imgr, fs)
                finally:
                    with trio.CancelScope(shield=True):
                        await _settle(fs)
                    nursery.cancel_scope.cancel()


def _assemble(config: MountConfig, store: object, imgr: ImgrClient) -> FileSystem:
    reader = StoreReader(store)  # type: ignore[arg-type]
    spill = config.cache_dir / "spill" if config.cache_dir else None
    if spill is not None:
        clear_spill_dir(spill)
    segments = Segments(
        reader.store, ObjectNumbers(imgr.fetch_nonces), reader.unstored, config.limits, spill
    )
    blocks = BlockCache(
        reader.store,
        reader.unstored,
        block_bytes=config.block_bytes,
        max_bytes=config.read_cache_bytes,
        readahead=config.settings.readahead,
    )
    inodes = Inodes(imgr, reader, PageCache(config.page_cache_bytes))
    gate = Gate()
    committer = Committer(imgr, inodes, segments, gate, interval=config.settings.commit_interval)
    return FileSystem(inodes, FileData(segments, blocks), committer, gate)


async def _settle(fs: FileSystem) -> None:
    """Unmount: everything committed, uploaded, and in a checkpoint."""
    try:
        await fs.committer.commit()
        await fs.data.segments.drain()
        await fs.inodes.imgr.flush()
    except Exception:
        log.exception("unmount could not store everything")
        raise
