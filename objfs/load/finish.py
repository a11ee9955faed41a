"""The last step of a load: the inode table and the volume's first checkpoint.

Every head's Location goes into a new inode table, written with the
superblock into one more segment through imgr's own checkpoint steps
(prepare, store, compare-and-swap, back up). Its object number is recorded
in the job first, so a load cut short here finds that object (the same
bytes: they follow from the job alone) instead of leaving an orphan, and
does not write it twice. Once the compare-and-swap succeeded the volume
exists; a resumed job that finds its own volume id in the checkpoint store
only writes the backup in object 0 again.
"""

from __future__ import annotations

import logging

import trio

from ickpt.store import CheckpointStore
from imgr import checkpoint as steps
from imgr.nonces import Nonces
from imgr.ownership import checkpoint_key
from imgr.state import empty
from layout.codec import Location
from layout.naming import object_name
from layout.pagecache import PageCache
from layout.records import Checkpoint
from layout.segment import Segment
from objfs.load.job import Job
from objfs.load.transfer import Mismatch
from objfs.objects import StoreReader
from objfs.storage import NotFound, ObjectStore

log = logging.getLogger(__name__)

TABLE_CACHE_BYTES = 16 << 20


async def finish(store: ObjectStore, ckpt: CheckpointStore, job: Job) -> Checkpoint:
    """Write the inode table and the checkpoint that makes the volume (once)."""
    volume = str(job.get("volume"))
    found = await ckpt.get(checkpoint_key(volume))
    if found is None:
        return await _make(store, ckpt, job, volume)
    record = Checkpoint.decode(found[1], f"checkpoint of volume {volume}")
    if record.volume_id != job.volume_id:
        raise Mismatch(f"volume {volume} was made by someone else while this load ran")
    await steps.back_up(store, record)  # the run whose swap succeeded may have died before
    return record


async def _make(store: ObjectStore, ckpt: CheckpointStore, job: Job, volume: str) -> Checkpoint:
    state = empty(job.volume_id, StoreReader(store), PageCache(TABLE_CACHE_BYTES))
    heads = await trio.to_thread.run_sync(_heads, job)
    for inode, location in heads:
        await state.table.put(inode, location)
    state.inode_count = len(heads)
    state.inodes = Nonces(cursor=heads[-1][0] + 1, durable=heads[-1][0] + 1)
    written, referenced = await trio.to_thread.run_sync(_space, job)
    state.accounts.apply(written, referenced, {})
    number = max(written, default=0) + 1
    state.objects = Nonces(cursor=number, durable=number)
    await trio.to_thread.run_sync(job.set, "checkpoint_object", number)
    prepared = steps.prepare(state)
    if not await _stored(store, prepared.segment):  # by a run cut short before its swap
        await steps.store_segment(store, prepared)
    await steps.swap(ckpt, checkpoint_key(volume), state, prepared)
    await steps.back_up(store, prepared.record)
    await steps.collect(store, state, list(prepared.deleting))
    return prepared.record


async def _stored(store: ObjectStore, segment: Segment) -> bool:
    """Whether the checkpoint segment is in the container already (the same bytes: the
    table and superblock are made from the job alone, so only the size can differ)."""
    try:
        return (await store.head(object_name(segment.number))).size == len(segment)
    except NotFound:
        return False


def _heads(job: Job) -> list[tuple[int, Location]]:
    rows = job.db.execute(
        "SELECT inode, head_object, head_offset, head_length FROM inodes "
        "WHERE head_object IS NOT NULL ORDER BY inode"
    )
    return [(inode, Location(*where)) for inode, *where in rows]


def _space(job: Job) -> tuple[dict[int, int], dict[int, int]]:
    """Bytes written and referenced per segment: heads and pages, and the data of loaded files."""
    db = job.db
    written = dict(db.execute("SELECT number, size FROM segments"))
    referenced = dict(db.execute("SELECT number, meta_bytes FROM segments"))
    data = db.execute(
        "SELECT segment, sum(length) FROM pieces JOIN inodes USING (inode) "
        "WHERE inodes.head_object IS NOT NULL GROUP BY segment"
    )
    for number, nbytes in data:
        referenced[number] += nbytes
    return written, referenced
