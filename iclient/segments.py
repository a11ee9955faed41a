"""The write-back buffer: log segments being filled, sealed and uploaded.

Everything a mount writes (file data, B+tree pages, inode heads) is appended
to the *open* segment, a future object of the volume. When it reaches
`segment_bytes`, or a commit needs it stored, it is *sealed* and uploaded in
the background, several at a time, while the next one fills. Until its
upload is done its bytes stay readable through `unstored` (the StoreReader's
map), from memory or, past the memory bound, from a spill file in the local
cache directory. Writers wait when memory and spill space are both full, so
a fast writer over a slow store never grows the process without bound.

An upload that fails is retried until it succeeds or the mount is shut
down: the bytes are the only copy of acknowledged writes.
"""

from __future__ import annotations

import logging
import mmap
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import trio

from layout.codec import Location
from layout.naming import object_name
from layout.segment import Segment
from objfs.backoff import full_jitter
from objfs.storage import ObjectStore, StorageError
from objfs.storage.api import BytesPayload, FilePayload, Payload

log = logging.getLogger(__name__)


FetchNumbers = Callable[[str, int], Awaitable[int]]  # ImgrClient.fetch_nonces


class ObjectNumbers:
    """Object numbers fetched from imgr in batches (imgr never hands one out twice)."""

    def __init__(self, fetch: FetchNumbers, batch: int = 64) -> None:
        self._fetch = fetch
        self._batch = batch
        self._next = self._end = 0
        self._lock = trio.Lock()

    async def next(self) -> int:
        async with self._lock:
            if self._next == self._end:
                self._next = await self._fetch("object", self._batch)
                self._end = self._next + self._batch
            self._next += 1
            return self._next - 1


@dataclass(eq=False)
class Sealed:
    number: int
    size: int
    data: bytearray | mmap.mmap
    spill: Path | None = None
    uploaded: trio.Event = field(default_factory=trio.Event)


@dataclass
class BufferLimits:
    segment_bytes: int = 32 << 20
    memory_bytes: int = 256 << 20
    disk_bytes: int = 2 << 30
    uploads: int = 4


class Segments:
    """The open segment, the sealed ones still uploading, and their bounds."""

    def __init__(
        self,
        store: ObjectStore,
        numbers: ObjectNumbers,
        unstored: dict[int, bytearray | mmap.mmap],
        limits: BufferLimits,
        spill_dir: Path | None,
    ) -> None:
        self.store = store
        self.numbers = numbers
        self.unstored = unstored
        self.limits = limits
        self.spill_dir = spill_dir
        self.open: Segment | None = None
        self.sealed: dict[int, Sealed] = {}
        self.memory = 0  # bytes of the open segment and sealed ones held in memory
        self.spilled = 0
        self.uploaded_bytes = 0
        self.uploaded_objects = 0
        self.upload_retries = 0
        self.unreported: dict[int, int] = {}  # sealed since the last commit: number -> size
        self._changed = trio.Condition()
        self._sealed_event = trio.Event()
        self._slots = trio.CapacityLimiter(limits.uploads)
        self._spilling = trio.Lock()
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the uploads until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    # ---------------------------------------------------------------- filling

    async def reserve(self, nbytes: int) -> None:
        """Wait until `nbytes` more fit in the buffer, and an open segment takes them.

        The caller appends them without awaiting anything in between.
        """
        limits = self.limits
        while True:
            if self.open is not None and len(self.open) + nbytes > limits.segment_bytes:
                if len(self.open):
                    self.seal()
            if self.memory + nbytes <= limits.memory_bytes or not self.sealed:
                if self.open is not None:
                    return
                self.ensure_open(await self.numbers.next())
                continue
            async with self._changed:
                await self._changed.wait()

    def ensure_open(self, number: int) -> None:
        """Open a segment numbered `number` unless one is open (a commit's records)."""
        if self.open is None:
            self.open = Segment(number)
            self.unstored[number] = self.open.buffer

    def append(self, record: bytes | bytearray | memoryview) -> Location:
        """Append to the open segment (after reserve(), or for a commit's records)."""
        assert self.open is not None, "append without an open segment"
        self.memory += len(record)
        return self.open.append(record)

    def is_open(self, number: int) -> bool:
        return self.open is not None and self.open.number == number

    def overwrite(self, location: Location, data: bytes) -> None:
        """Replace bytes already in the open segment (a rewrite of unsealed data)."""
        assert self.open is not None and self.open.number == location.object
        self.open.overwrite(location.offset, data)

    # --------------------------------------------------------------- sealing

    def seal(self) -> int | None:
        """Seal the open segment and start its upload; its number, or None if empty."""
        segment, self.open = self.open, None
        if segment is None:
            return None
        if not len(segment):
            self.open = segment
            return None
        unsealed = len(segment)
        segment.seal()  # in the buffer before it may spill to a file
        self.memory += len(segment) - unsealed
        sealed = Sealed(segment.number, len(segment), segment.buffer)
        self.sealed[sealed.number] = sealed
        self.unreported[sealed.number] = sealed.size
        self._sealed_event.set()
        self._sealed_event = trio.Event()
        assert self._nursery is not None, "Segments.run() is not running"
        self._nursery.start_soon(self._upload, sealed)
        return sealed.number

    async def wait_sealed(self) -> None:
        await self._sealed_event.wait()

    @property
    def unreported_bytes(self) -> int:
        return sum(self.unreported.values())

    def take_unreported(self) -> dict[int, int]:
        """The segments sealed since the last commit, for its batch."""
        taken, self.unreported = self.unreported, {}
        return taken

    def unreport(self, objects: dict[int, int]) -> None:
        """A commit that failed: its segments go into the next one."""
        self.unreported.update(objects)

    async def wait_uploaded(self, numbers: list[int]) -> None:
        for number in numbers:
            sealed = self.sealed.get(number)
            if sealed is not None:
                await sealed.uploaded.wait()

    async def drain(self) -> None:
        """Seal and wait for every upload (unmount)."""
        self.seal()
        await self.wait_uploaded(list(self.sealed))

    @property
    def uploading(self) -> int:
        return len(self.sealed)

    async def _upload(self, sealed: Sealed) -> None:
        if self._should_spill(sealed):
            async with self._spilling:
                await self._spill(sealed)
        async with self._slots:
            name = object_name(sealed.number)
            delays = full_jitter(1 << 30, 0.5, 30.0)
            while True:
                try:
                    await self.store.put(name, self._payload(sealed))
                    break
                except StorageError as exc:
                    self.upload_retries += 1
                    log.warning("upload of object %s failed, retrying: %s", name, exc)
                    await trio.sleep(next(delays))
        self._forget(sealed)
        self.uploaded_bytes += sealed.size
        self.uploaded_objects += 1
        sealed.uploaded.set()
        async with self._changed:
            self._changed.notify_all()

    def _payload(self, sealed: Sealed) -> Payload:
        if sealed.spill is not None:
            return FilePayload(sealed.spill)
        return BytesPayload(sealed.data)

    def _should_spill(self, sealed: Sealed) -> bool:
        limits = self.limits
        return (
            self.spill_dir is not None
            and self.memory > limits.memory_bytes // 2
            and self.spilled + sealed.size <= limits.disk_bytes
        )

    async def _spill(self, sealed: Sealed) -> None:
        assert self.spill_dir is not None
        path = self.spill_dir / object_name(sealed.number)
        data = sealed.data
        mapped = await trio.to_thread.run_sync(_write_and_map, path, data)
        sealed.data, sealed.spill = mapped, path
        self.unstored[sealed.number] = mapped
        self.memory -= sealed.size
        self.spilled += sealed.size
        async with self._changed:
            self._changed.notify_all()

    def _forget(self, sealed: Sealed) -> None:
        del self.sealed[sealed.number]
        self.unstored.pop(sealed.number, None)
        if sealed.spill is None:
            self.memory -= sealed.size
        else:
            self.spilled -= sealed.size
            assert isinstance(sealed.data, mmap.mmap)
            sealed.data.close()
            sealed.spill.unlink(missing_ok=True)


def _write_and_map(path: Path, data: bytearray | mmap.mmap) -> mmap.mmap:
    with open(path, "wb") as f:
        f.write(data)
    with open(path, "rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def clear_spill_dir(path: Path) -> None:
    """Spill files of an earlier run are never needed again (never acknowledged durable)."""
    path.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(path):
        if entry.is_file():
            os.unlink(entry.path)
