"""One load from start (or from where a cut-short run stopped) to the volume's checkpoint.

Phases, recorded in the job so a resumed run skips what is done:
scan (the tree into the job) -> pack (segments built and uploaded) ->
finish (inode table and checkpoint) -> done.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import trio

from ickpt.store import CheckpointStore
from iclient.config import MountConfig
from iclient.mount import Mount
from imgr.format import AlreadyFormatted
from imgr.ownership import checkpoint_key
from layout.naming import object_name
from layout.records import FileType
from objfs.load.finish import finish
from objfs.load.into import Into
from objfs.load.job import Identity, Job, JobError
from objfs.load.pack import SEGMENT_BYTES, Packer, Sealed, Tally, rebuild
from objfs.load.progress import Progress, Totals
from objfs.load.scan import Scan
from objfs.load.transfer import Uploaded, mark, our_objects, unfinished, upload
from objfs.storage import NotFound, ObjectStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    source: Path
    state: Path
    identity: Identity
    new: bool = False
    jobs: int = 8
    segment_bytes: int = SEGMENT_BYTES
    hashing: bool = False  # a manifest will be written: hash every file as it is read


@dataclass
class Outcome:
    job: Job
    already_done: bool = False
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    tally: Tally = field(default_factory=Tally)  # the whole job's, as it goes
    before: Totals = Totals(0, 0)  # what earlier runs of the job did
    uploaded: Uploaded = field(default_factory=Uploaded)


async def load(request: Request, store: ObjectStore, ckpt: CheckpointStore) -> Outcome:
    """Into a new volume: the state dir's job resumed, or a new one into an empty container."""
    job = await _resumed(request, store)
    if job is None:
        await _check_new(request.identity.volume, store, ckpt)
        job = await trio.to_thread.run_sync(
            Job.create, request.state, request.identity, uuid.uuid4().bytes
        )
    outcome = await _outcome(job)
    await _scan(request, job)
    if job.phase == "pack":
        await _pack(request, job, store, outcome)
        await trio.to_thread.run_sync(job.set, "phase", "finish")
    if job.phase == "finish":
        await finish(store, ckpt, job)
        await trio.to_thread.run_sync(job.set, "phase", "done")
    outcome.seconds = time.monotonic() - outcome.started
    return outcome


async def load_into(request: Request, mount: MountConfig) -> Outcome:
    """Under a path of a served volume, through its imgr."""
    job = await _resumed(request, None)
    if job is None:
        job = await trio.to_thread.run_sync(Job.create, request.state, request.identity, b"")
    outcome = await _outcome(job)
    await _scan(request, job)
    if job.phase == "pack":
        await _copy_into(request, job, mount, outcome)
        await trio.to_thread.run_sync(job.set, "phase", "done")
    outcome.seconds = time.monotonic() - outcome.started
    return outcome


async def _outcome(job: Job) -> Outcome:
    """What this run will report, counting from what earlier runs of the job did."""
    _, done = await trio.to_thread.run_sync(_counts, job)
    tally = Tally(entries=done.entries, data_bytes=done.data_bytes)
    return Outcome(job, already_done=job.phase == "done", tally=tally, before=done)


async def _resumed(request: Request, store: ObjectStore | None) -> Job | None:
    """The state dir's job if this command is it; None when a new job is to start."""
    identity, state = request.identity, request.state
    old = await trio.to_thread.run_sync(_existing, state)
    if old is None:
        return None
    if old.identity == identity and not request.new:
        return old
    if old.phase == "done":  # a finished job's record makes way for the next
        return None
    if not request.new:
        raise JobError(
            f"{state} holds the unfinished {old.identity.describe()}: run that command "
            "again to finish it, or add --new to abandon it"
        )
    if store is not None and old.identity.url == identity.url and not old.identity.into:
        await _abandon(old, store)
    return None


async def _check_new(volume: str, store: ObjectStore, ckpt: CheckpointStore) -> None:
    """A new volume goes only into a container without objfs objects and a name not in use."""
    await store.ensure_container()
    found = await our_objects(store)
    if found or await ckpt.get(checkpoint_key(volume)) is not None:
        what = f"{len(found)} objfs objects" if found else "a checkpoint in the checkpoint store"
        raise AlreadyFormatted(f"volume {volume} exists ({what}); objfs load makes a new volume")


async def _scan(request: Request, job: Job) -> None:
    if job.phase == "scan":
        excludes = [re.compile(pattern) for pattern in request.identity.excludes]
        scan = Scan(job, request.source, lambda n: None, excludes)
        await trio.to_thread.run_sync(scan.run)
        await trio.to_thread.run_sync(job.set, "phase", "pack")


def _existing(state: Path) -> Job | None:
    return Job.open(state) if Job.exists(state) else None


async def _abandon(job: Job, store: ObjectStore) -> None:
    """Delete what an abandoned job uploaded into the container it shares with the new one."""
    numbers = [number for number, _, _ in job.segments()]
    numbers.append(job.get("checkpoint_object"))
    for number in numbers:
        if isinstance(number, int):
            try:
                await store.delete(object_name(number))
            except NotFound:
                pass
    log.info("abandoned %s: %d objects deleted", job.identity.describe(), len(numbers))


async def _pack(request: Request, job: Job, store: ObjectStore, outcome: Outcome) -> None:
    totals, _ = await trio.to_thread.run_sync(_counts, job)
    todo = await unfinished(store, job)
    send, receive = trio.open_memory_channel[Sealed](0)
    stored, marks = trio.open_memory_channel[int](math.inf)
    async with trio.open_nursery() as shown:
        shown.start_soon(Progress(totals, outcome.tally).show)
        async with trio.open_nursery() as uploads:
            uploads.start_soon(mark, job, marks)
            for _ in range(request.jobs):
                uploads.start_soon(upload, store, receive.clone(), stored.clone(), outcome.uploaded)
            receive.close()
            stored.close()
            async with send:
                for number, size, digest in todo:
                    data = await trio.to_thread.run_sync(
                        rebuild, job, request.source, number, size, digest
                    )
                    await send.send(Sealed(number, data))
                await trio.to_thread.run_sync(_run_packer, request, job, send, outcome.tally)
        shown.cancel_scope.cancel()


async def _copy_into(request: Request, job: Job, mount: MountConfig, outcome: Outcome) -> None:
    totals, _ = await trio.to_thread.run_sync(_counts, job)
    fresh = not await trio.to_thread.run_sync(job.get, "copy_started")
    await trio.to_thread.run_sync(job.set, "copy_started", True)
    async with trio.open_nursery() as shown:
        shown.start_soon(Progress(totals, outcome.tally).show)
        async with Mount.open(mount) as mounted:
            into = Into(job, os.fsencode(request.source), mounted.fs, outcome.tally)
            await into.run(os.fsencode(request.identity.into), fresh)
        shown.cancel_scope.cancel()


def _run_packer(
    request: Request, job: Job, send: trio.MemorySendChannel[Sealed], tally: Tally
) -> None:
    """In a worker thread: pack everything left, handing each sealed segment to the uploaders."""

    def deliver(sealed: Sealed) -> None:
        trio.from_thread.run(send.send, sealed)

    packer = Packer(
        job,
        request.source,
        deliver,
        hashing=request.hashing,
        tally=tally,
        target=request.segment_bytes,
    )
    packer.run()


def _counts(job: Job) -> tuple[Totals, Totals]:
    """The whole job, and what earlier runs did of it."""
    db = job.db
    entries, data = db.execute(
        "SELECT count(*), coalesce(sum(CASE WHEN type = ? THEN size END), 0) FROM inodes",
        (int(FileType.REGULAR),),
    ).fetchone()
    (placed,) = db.execute(
        "SELECT count(*) FROM inodes WHERE head_object IS NOT NULL OR target IS NOT NULL"
    ).fetchone()
    (stored,) = db.execute("SELECT coalesce(sum(length), 0) FROM pieces").fetchone()
    return Totals(entries, data), Totals(placed, stored)
