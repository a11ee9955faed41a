"""Taking a checkpoint of one volume: prepare, store, compare-and-swap, back up, collect.

1. prepare (no await, under the table lock): the dirty inode-table pages
   and a new superblock go into a new segment, sealed with its digest
   table; the checkpoint record names it, with raised nonce ceilings.
   Everything applied before this point is in it; what comes after belongs
   to the next one.
2. store the segment as a new object (retried until it is stored: the
   in-memory tree already points into it).
3. compare-and-swap the record into ickpt. A conflict that is not our own
   earlier write means another imgr owns the volume: `Fenced`.
4. copy the record to object 0, the backup.
5. delete the objects the new superblock lists as `deleting`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import trio

from ickpt.store import CheckpointStore, Conflict, StoreError
from imgr.api import Fenced
from imgr.state import VolumeState
from layout.naming import object_name
from layout.records import Checkpoint, Superblock
from layout.segment import Segment
from objfs.backoff import full_jitter
from objfs.storage import NotFound, ObjectStore, StorageError

log = logging.getLogger(__name__)

BACKUP = object_name(0)
DELETE_CONCURRENCY = 16


@dataclass
class Prepared:
    segment: Segment
    may_overwrite: bool
    record: Checkpoint
    deleting: tuple[int, ...]
    old_superblock: int | None
    changes: int  # state.changes covered


def prepare(state: VolumeState, segment: Segment | None = None) -> Prepared:
    """Step 1; the caller holds state.lock (or is the only user, as format is)."""
    may_overwrite = True
    if segment is None:
        number, may_overwrite = state.objects.take_for_checkpoint()
        segment = Segment(number)
    flushed = state.table.flush(segment)
    accounts = state.accounts
    old_superblock = accounts.pinned
    deleting = accounts.snapshot(segment.number, len(segment), flushed.released)
    superblock = Superblock(
        inode_table=flushed.root,
        inode_count=state.inode_count,
        object_count=accounts.object_count,
        bytes_written=accounts.bytes_written,
        bytes_referenced=accounts.bytes_referenced,
        referenced=dict(accounts.referenced),
        deleting=deleting,
        orphans=tuple(sorted(state.orphans)),
    )
    location = segment.append(superblock.encode())
    segment.seal()
    record = Checkpoint(
        volume_id=state.volume_id,
        sequence=state.sequence + 1,
        superblock=location,
        next_inode=state.inodes.ceiling(),
        next_object=state.objects.ceiling(),
        time_ns=time.time_ns(),
    )
    return Prepared(segment, may_overwrite, record, deleting, old_superblock, state.changes)


async def store_segment(store: ObjectStore, prepared: Prepared) -> None:
    """Step 2: retried with back-off until stored; the tree already refers to it."""
    name = object_name(prepared.segment.number)
    data = prepared.segment.data
    delays = full_jitter(1 << 30, 0.5, 30.0)
    while True:
        try:
            await store.put(name, data, if_absent=not prepared.may_overwrite)
            return
        except StorageError as exc:
            delay = next(delays)
            log.error("checkpoint object %s not stored (%s); again in %.1fs", name, exc, delay)
            await trio.sleep(delay)


async def swap(ckpt: CheckpointStore, key: str, state: VolumeState, prepared: Prepared) -> int:
    """Step 3: the new version in ickpt; Fenced if another imgr got there first."""
    value = prepared.record.encode()
    delays = full_jitter(1 << 30, 0.5, 10.0)
    while True:
        try:
            return await ckpt.put(key, value, state.version)
        except Conflict as conflict:
            found = await ckpt.get(key)
            if found is not None and found[1] == value:
                return found[0]  # our own write, its answer lost
            raise Fenced(
                f"checkpoint {key} moved to version {conflict.current_version} "
                f"(expected {state.version}): another imgr serves this volume"
            ) from None
        except StoreError as exc:
            delay = next(delays)
            log.error("ickpt: checkpoint %s not swapped (%s); again in %.1fs", key, exc, delay)
            await trio.sleep(delay)


def made_durable(state: VolumeState, prepared: Prepared, version: int) -> None:
    """After step 3: the record is the volume's current checkpoint."""
    state.record = prepared.record
    state.version = version
    state.inodes.made_durable(prepared.record.next_inode)
    state.objects.made_durable(prepared.record.next_object)


async def back_up(store: ObjectStore, record: Checkpoint) -> bool:
    """Step 4: False (logged) if object 0 could not be written."""
    try:
        await store.put(BACKUP, record.encode())
        return True
    except StorageError as exc:
        log.warning("checkpoint %d: backup in object 0 not written: %s", record.sequence, exc)
        return False


async def collect(store: ObjectStore, state: VolumeState, objects: list[int]) -> None:
    """Step 5: delete `objects`; those that fail stay listed for the next round."""
    limiter = trio.CapacityLimiter(DELETE_CONCURRENCY)

    async def delete(number: int) -> None:
        async with limiter:
            try:
                await store.delete(object_name(number))
            except NotFound:
                pass
            except StorageError as exc:
                log.warning("garbage object %s not deleted: %s", object_name(number), exc)
                return
            state.accounts.forget(number)

    async with trio.open_nursery() as nursery:
        for number in objects:
            nursery.start_soon(delete, number)
