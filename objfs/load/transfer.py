"""Segments into the container: parallel uploads, and what a resumed load finds there.

A resumed load first compares the container with the job: every objfs
object in it must be one the job recorded (or its checkpoint object), and
every segment the job marked uploaded must be there. A recorded segment
whose upload never finished is sent again (made again from the source, see
`objfs.load.pack.rebuild`); one that did arrive is only marked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import trio

from layout.errors import LayoutError
from layout.naming import object_name, object_number
from objfs.load.job import Job
from objfs.load.pack import Sealed
from objfs.storage import GeneratedPayload, ObjectStore, Payload
from objfs.storage.api import CHUNK_SIZE

log = logging.getLogger(__name__)


class Mismatch(Exception):
    """The container does not hold what the job says it wrote."""


@dataclass
class Uploaded:
    segments: int = 0
    nbytes: int = 0


async def our_objects(store: ObjectStore) -> dict[int, int]:
    """Object number -> size of every objfs object in the container."""
    found = {}
    async for info in store.list():
        try:
            found[object_number(info.name)] = info.size
        except LayoutError:
            continue
    return found


async def unfinished(store: ObjectStore, job: Job) -> list[tuple[int, int, str]]:
    """(number, size, digest) of the recorded segments still to upload; Mismatch if foreign."""
    found = await our_objects(store)
    recorded = {number: (size, dig, done) for number, size, dig, done in _segments(job)}
    allowed = {0, job.get("checkpoint_object")}
    foreign = sorted(n for n in found if n not in recorded and n not in allowed)
    if foreign:
        raise Mismatch(
            f"the container holds {len(foreign)} objects this load did not write "
            f"(e.g. {object_name(foreign[0])})"
        )
    lost = [n for n, (_, _, done) in recorded.items() if done and n not in found]
    if lost:
        raise Mismatch(
            f"the container lacks {len(lost)} objects this load uploaded "
            f"(e.g. {object_name(lost[0])})"
        )
    todo = []
    for number, (size, dig, done) in sorted(recorded.items()):
        if done:
            continue
        if found.get(number) == size:
            await trio.to_thread.run_sync(job.mark_uploaded, number)
        elif number in found:
            raise Mismatch(f"object {object_name(number)} holds {found[number]} bytes, not {size}")
        else:
            todo.append((number, size, dig))
    return todo


def _segments(job: Job) -> list[tuple[int, int, str, int]]:
    return job.db.execute("SELECT number, size, digest, uploaded FROM segments").fetchall()


async def upload(
    store: ObjectStore,
    receive: trio.MemoryReceiveChannel[Sealed],
    stored: trio.MemorySendChannel[int],
    uploaded: Uploaded,
) -> None:
    """Store sealed segments as they come, passing on the number of each once it is stored."""
    async with receive, stored:
        async for sealed in receive:
            await store.put(object_name(sealed.number), _payload(sealed.data))
            await stored.send(sealed.number)
            uploaded.segments += 1
            uploaded.nbytes += len(sealed.data)


def _payload(data: bytes | bytearray) -> Payload:
    """The segment's bytes sent as views of it: no copy of the whole, nor of each chunk."""
    view = memoryview(data)

    def chunks() -> Iterator[memoryview]:
        return (view[at : at + CHUNK_SIZE] for at in range(0, len(view), CHUNK_SIZE))

    return GeneratedPayload(len(view), chunks)


async def mark(job: Job, stored: trio.MemoryReceiveChannel[int]) -> None:
    """Record stored segments in the job, apart from the uploads: the packer's transaction
    can hold the job database for a while, and an upload slot should not wait for it."""
    async with stored:
        async for number in stored:
            await trio.to_thread.run_sync(job.mark_uploaded, number)
