"""fsck and gc from start to end: what they read, in which order, and what they change.

Both list the container before they read the checkpoint. An object written
after the listing is not in it; one listed that a later checkpoint makes
referenced was uploaded moments before, and gc never deletes an object
younger than its minimum age. fsck --repair owns the volume for the whole
run (no imgr can serve it meanwhile) and gives it up however the run ends.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from ickpt.store import CheckpointStore
from imgr import ownership
from imgr.volume import Timing
from layout.errors import LayoutError
from layout.records import Checkpoint, FileType
from objfs.fsck.blocks import BlockCheck
from objfs.fsck.checks import analyse
from objfs.fsck.objects import listing, missing, orphans
from objfs.fsck.progress import Progress
from objfs.fsck.repair import delete_orphans, repair
from objfs.fsck.report import Orphan, Problem, Report
from objfs.fsck.walk import Walk, Walker, bare
from objfs.storage import ObjectInfo, ObjectStore

log = logging.getLogger(__name__)

OWNER_TTL = Timing().owner_ttl  # as imgr's default: a crashed fsck's claim ages out like it
GIVE_UP_SECONDS = 10.0  # the most ^C waits to hand the volume back
GC_WALKS = 3  # walks of a served volume whose checkpoint moves under them


class NoVolume(Exception):
    """The checkpoint store holds no checkpoint of that volume."""


class GcRefused(Exception):
    """gc cannot know what is referenced: it deletes nothing."""


async def read_checkpoint(ckpt: CheckpointStore, volume: str) -> tuple[int, Checkpoint]:
    """(version, record) of the volume's current checkpoint; LayoutError if it is damaged."""
    found = await ckpt.get(ownership.checkpoint_key(volume))
    if found is None:
        raise NoVolume(f"no volume {volume} in the checkpoint store (format it first)")
    version, value = found
    return version, Checkpoint.decode(value, f"checkpoint record of volume {volume}")


@asynccontextmanager
async def owning(ckpt: CheckpointStore, volume: str) -> AsyncIterator[None]:
    """The volume as its owner (VolumeBusy while an imgr serves it)."""
    version = await ownership.claim(ckpt, volume, f"fsck-{uuid.uuid4().hex}", OWNER_TTL)
    try:
        yield
    finally:
        await _give_up(ckpt, volume, version)


@trio.lowlevel.enable_ki_protection
async def _give_up(ckpt: CheckpointStore, volume: str, version: int) -> None:
    # Even on ^C: else the volume stays claimed, refused to every imgr, for OWNER_TTL.
    # Bounded all the same: a checkpoint store that no longer answers must not hang ^C.
    with trio.CancelScope(shield=True, deadline=trio.current_time() + GIVE_UP_SECONDS) as scope:
        await ownership.give_up(ckpt, volume, version)
    if scope.cancelled_caught:
        log.warning("volume %s: owner record not removed; it ages out in %.0fs", volume, OWNER_TTL)


async def fsck(
    store: ObjectStore, ckpt: CheckpointStore, volume: str, *, fix: bool, progress: Progress
) -> Report:
    report = Report(volume, store.url)
    if not fix:
        await _check(store, ckpt, volume, report, progress)
        return report
    async with owning(ckpt, volume):
        walk = await _check(store, ckpt, volume, report, progress)
        if walk is not None:
            await repair(store, ckpt, volume, walk, report)
    return report


async def _check(
    store: ObjectStore, ckpt: CheckpointStore, volume: str, report: Report, progress: Progress
) -> Walk | None:
    listed = await listing(store)
    try:
        _, record = await read_checkpoint(ckpt, volume)
    except LayoutError as exc:
        report.add(Problem("record", f"the checkpoint record: {bare(exc)}"))
        report.complete = False
        return None
    report.sequence = record.sequence
    walk = await Walker(store, record, report, progress).run()
    namespace = analyse(walk, report)
    gone = missing(walk, listed, report)
    report.orphans = orphans(walk, listed)
    await BlockCheck(store, walk, report, progress).run(gone)
    report.resolve(namespace.paths_of)
    report.counts.update(_counts(walk, listed, progress))
    return walk


def _counts(walk: Walk, listed: dict[int, ObjectInfo], progress: Progress) -> dict[str, int]:
    types = [head.type for head in walk.heads.values()]
    return {
        "inodes": len(walk.table),
        "directories": types.count(FileType.DIRECTORY),
        "files": types.count(FileType.REGULAR),
        "symlinks": types.count(FileType.SYMLINK),
        "objects": len(walk.uses),
        "objects_listed": len(listed),
        "bytes_checked": progress.nbytes,
        "deleted_while_open": len(walk.superblock.orphans) if walk.superblock else 0,
    }


@dataclass
class Collected:
    sequence: int
    deleted: list[Orphan]  # old enough (or would be, on a dry run)
    kept: list[Orphan]  # younger than the minimum age, or of unknown age


async def gc(
    store: ObjectStore,
    ckpt: CheckpointStore,
    volume: str,
    *,
    min_age: float,
    dry_run: bool,
    progress: Progress,
) -> Collected:
    record, walk, listed = await _complete_walk(store, ckpt, volume, progress)
    now = time.time()
    found = orphans(walk, listed)
    old = [o for o in found if o.modified is not None and now - o.modified >= min_age]
    if not dry_run:
        await delete_orphans(store, old)
    doomed = {o.number for o in old}
    return Collected(record.sequence, old, [o for o in found if o.number not in doomed])


async def _complete_walk(
    store: ObjectStore, ckpt: CheckpointStore, volume: str, progress: Progress
) -> tuple[Checkpoint, Walk, dict[int, ObjectInfo]]:
    """A walk that read everything; a served volume may need a second one.

    imgr deletes what a newer checkpoint no longer needs, so a walk of an
    older one can find pages gone: then the checkpoint has moved, and the
    walk starts again from the new one.
    """
    for _ in range(GC_WALKS):
        listed = await listing(store)
        try:
            version, record = await read_checkpoint(ckpt, volume)
        except LayoutError as exc:
            raise GcRefused(f"the checkpoint record is damaged ({exc}); run objfs fsck") from None
        report = Report(volume, store.url, record.sequence)
        walk = await Walker(store, record, report, progress).run()
        if report.complete:
            return record, walk, listed
        if (await ckpt.get(ownership.checkpoint_key(volume)) or (0,))[0] == version:
            first = report.problems[0]
            raise GcRefused(f"{first.where()}{first.message}; run objfs fsck")
    raise GcRefused(f"the checkpoint moved under {GC_WALKS} walks; run gc again")
