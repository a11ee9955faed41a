"""Formatting a volume: an empty root directory (inode 1) and a first checkpoint.

Refused when the volume's container already holds objfs objects or ickpt
already holds a checkpoint of that name, unless forced. A forced format of a
volume that another imgr serves (fresh owner heartbeat) is still refused:
stop serving it first. Forcing deletes the old volume's objects first, so
the new one starts from clean numbers.
"""

from __future__ import annotations

import logging
import os
import time
import uuid

from ickpt.store import CheckpointStore
from imgr import checkpoint as ckpt_steps
from imgr import ownership
from imgr.api import ROOT_INODE
from imgr.state import empty
from layout.errors import LayoutError
from layout.naming import object_number
from layout.pagecache import PageCache
from layout.records import Checkpoint, FileType, InodeHead
from layout.segment import Segment
from objfs.objects import StoreReader
from objfs.storage import ObjectStore

log = logging.getLogger(__name__)


class AlreadyFormatted(Exception):
    """The container or ickpt already holds a volume; format --force replaces it."""


async def our_objects(store: ObjectStore) -> list[str]:
    """Names in the container that are objfs objects (16 reversed hex digits)."""
    names = []
    async for info in store.list():
        try:
            object_number(info.name)
        except LayoutError:
            continue
        names.append(info.name)
    return names


def root_head(now_ns: int) -> InodeHead:
    return InodeHead(
        inode=ROOT_INODE,
        type=FileType.DIRECTORY,
        mode=0o755,
        uid=os.getuid(),
        gid=os.getgid(),
        atime_ns=now_ns,
        mtime_ns=now_ns,
        ctime_ns=now_ns,
        btime_ns=now_ns,
    )


async def format_volume(
    store: ObjectStore,
    ckpt: CheckpointStore,
    name: str,
    *,
    force: bool = False,
    owner_ttl: float = 30.0,
) -> Checkpoint:
    """Format `name` in `store`; the first checkpoint record."""
    await store.ensure_container()
    key = ownership.checkpoint_key(name)
    existing = await ckpt.get(key)
    objects = await our_objects(store)
    if (existing or objects) and not force:
        found = f"the container holds {len(objects)} objfs objects"
        where = "ickpt holds a checkpoint of it" if existing else found
        raise AlreadyFormatted(f"volume {name}: {where}; use --force to replace")
    if force:
        # Refuses (VolumeBusy) while another imgr serves it.
        owner_version = await ownership.claim(ckpt, name, f"format-{uuid.uuid4().hex}", owner_ttl)
        for object_name in objects:
            await store.delete(object_name)
        await ownership.give_up(ckpt, name, owner_version)
    state = empty(uuid.uuid4().bytes, StoreReader(store), PageCache(1 << 20))
    state.version = existing[0] if existing else 0
    number, _ = state.objects.take_for_checkpoint()
    segment = Segment(number)
    head = segment.append(root_head(time.time_ns()).encode())
    await state.table.put(ROOT_INODE, head)
    state.inode_count = 1
    state.inodes.cursor = ROOT_INODE + 1
    prepared = ckpt_steps.prepare(state, segment)
    await ckpt_steps.store_segment(store, prepared)
    await ckpt_steps.swap(ckpt, key, state, prepared)
    await ckpt_steps.back_up(store, prepared.record)
    log.info("formatted volume %s (id %s)", name, prepared.record.volume_id.hex())
    return prepared.record
