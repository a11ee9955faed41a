"""Commits: the changed inodes of a mount become one PutInodeTableEntries batch.

A commit takes a snapshot with no change in progress (the Gate): it flushes
every dirty payload tree and appends every dirty inode head to the open
segment, seals it, waits until it and every earlier segment are stored, then
sends all those heads, the deleted inodes and the byte accounting to imgr in
one atomic batch. So a crash at any point leaves each inode as of one commit
or the next, never half of a rename. Commits run one at a time, in order.

A commit happens on fsync, when enough data is buffered, every
`commit_interval` seconds while anything is dirty, on a lease interrupt
(before letting go) and at unmount.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

import trio

from iclient.inode import Inode
from iclient.inodes import Inodes
from iclient.segments import Segments
from imgr.client import ImgrClient
from layout.codec import Location

log = logging.getLogger(__name__)


class Gate:
    """Any number of changes at once, or one commit snapshot alone.

    A waiting snapshot holds back new changes, so a stream of writes cannot
    starve fsync. Changes must not nest, nor wait for another mount (a lease)
    inside: a lease interrupt needs a snapshot to answer.
    """

    def __init__(self) -> None:
        self._active = 0
        self._exclusive = False
        self._waiting = 0
        self._lot = trio.lowlevel.ParkingLot()
        self.changes = 0  # change sections entered, ever

    @asynccontextmanager
    async def change(self) -> AsyncIterator[None]:
        while self._exclusive or self._waiting:
            await self._lot.park()
        self._active += 1
        self.changes += 1
        try:
            yield
        finally:
            self._active -= 1
            if not self._active:
                self._lot.unpark_all()

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[None]:
        self._waiting += 1
        try:
            while self._exclusive or self._active:
                await self._lot.park()
        finally:
            self._waiting -= 1
        self._exclusive = True
        try:
            yield
        finally:
            self._exclusive = False
            self._lot.unpark_all()


@dataclass
class Batch:
    inodes: list[Inode] = field(default_factory=list)
    entries: dict[int, Location] = field(default_factory=dict)
    deletes: list[int] = field(default_factory=list)
    orphans: list[Inode] = field(default_factory=list)  # deleted here, still open (delete_sent)
    objects: dict[int, int] = field(default_factory=dict)
    referenced: dict[int, int] = field(default_factory=dict)
    released: dict[int, int] = field(default_factory=dict)
    segment: int | None = None


class Committer:
    def __init__(
        self,
        imgr: ImgrClient,
        inodes: Inodes,
        segments: Segments,
        gate: Gate,
        *,
        interval: float = 5.0,
        commit_bytes: int = 256 << 20,
    ) -> None:
        self.imgr = imgr
        self.inodes = inodes
        self.segments = segments
        self.gate = gate
        self.interval = interval
        self.commit_bytes = commit_bytes
        self._lock = trio.Lock()
        self._seen_changes = 0
        self.commits = 0
        self.committed_inodes = 0
        self.last_commit_seconds = 0.0

    async def run(self) -> None:
        """Commit every `interval` while anything changed, and when data piles up."""
        while True:
            with trio.move_on_after(self.interval):
                while self.segments.unreported_bytes < self.commit_bytes:
                    await self.segments.wait_sealed()
            await self.commit()

    async def commit(self, let_go: tuple[int, str] | None = None) -> None:
        """Make everything changed so far part of the inode table.

        `let_go` (inode, to): a lease interrupt being answered; the lease is
        taken down within the snapshot, so no change slips in after it.
        """
        async with self._lock:
            started = trio.current_time()
            spare = await self.segments.numbers.next()
            async with self.gate.snapshot():
                await self._announce_unlinked()
                batch = self._snapshot(spare)
                if let_go is not None:
                    self.inodes.let_go(*let_go)
            if batch is None:
                return
            try:
                await self.segments.wait_uploaded(list(batch.objects))
                await self.imgr.put_entries(
                    batch.entries,
                    delete=batch.deletes,
                    objects=batch.objects,
                    referenced=batch.referenced,
                    released=batch.released,
                )
            except BaseException:
                self._undo(batch)
                raise
            for inode in batch.inodes:
                self.inodes.committed(inode, batch.entries[inode.number])
            self.commits += 1
            self.committed_inodes += len(batch.entries)
            self.last_commit_seconds = trio.current_time() - started

    async def settled(self) -> None:
        """Returns once every commit already under way has ended."""
        async with self._lock:
            pass

    async def _announce_unlinked(self) -> None:
        """Count at imgr the open files whose last name went, so their delete keeps them."""
        for number in sorted(self.inodes.unlinked):
            inode = self.inodes.held[number]
            if inode.opens and not inode.announced_opens:
                inode.announced_opens = 1
                await self.imgr.adjust_open(number, 1)

    def _snapshot(self, spare: int) -> Batch | None:
        """Flush the dirty trees and heads into the open segment and seal it."""
        changed = self.gate.changes != self._seen_changes
        self._seen_changes = self.gate.changes
        segments, inodes = self.segments, self.inodes
        if not changed and not segments.unreported and not inodes.deleted:
            return None
        segments.ensure_open(spare)
        batch = Batch(deletes=sorted(inodes.deleted))
        inodes.deleted.clear()
        self._delete_unlinked(batch)
        for inode in [i for i in inodes.held.values() if i.dirty]:
            self._add(batch, inode)
        batch.segment = segments.seal()
        batch.objects = segments.take_unreported()
        if not batch.entries and not batch.deletes and not batch.objects:
            return None
        return batch

    def _delete_unlinked(self, batch: Batch) -> None:
        """Inodes with no name left are deleted at once; imgr keeps those open as orphans."""
        for number in sorted(self.inodes.unlinked):
            inode = self.inodes.held[number]
            if not inode.announced_opens:
                inode.discard_changes()  # not open: they are for nobody
                if inode.fresh or inode.delete_sent:
                    continue
            elif inode.delete_sent:
                continue
            batch.deletes.append(number)
            batch.orphans.append(inode)
            inode.delete_sent = True

    def _add(self, batch: Batch, inode: Inode) -> None:
        segments = self.segments
        tree = inode.tree
        if tree is not None and tree.dirty:
            before = len(segments.open)
            result = tree.flush(segments)
            inode.account(segments.open.number, len(segments.open) - before)
            for obj, nbytes in result.released.items():
                inode.account(obj, -nbytes)
        payload = tree.root if tree is not None else None
        inode.head = replace(inode.head, payload=payload, accounting=dict(inode.accounting))
        batch.entries[inode.number] = segments.append(inode.head.encode())
        _merge(batch.referenced, inode.referenced)
        _merge(batch.released, inode.released)
        inode.referenced, inode.released = {}, {}
        inode.dirty = False
        batch.inodes.append(inode)

    def _undo(self, batch: Batch) -> None:
        """The batch was not applied: everything in it is to be sent again."""
        log.warning("commit of %d inodes not applied; kept for the next", len(batch.entries))
        orphans = {inode.number for inode in batch.orphans}
        self.inodes.deleted.update(n for n in batch.deletes if n not in orphans)
        for inode in batch.orphans:
            if self.inodes.held.get(inode.number) is inode:
                inode.delete_sent = False
            elif not inode.fresh:  # closed and forgotten meanwhile: its delete is still due
                self.inodes.deleted.add(inode.number)
        self.segments.unreport(batch.objects)
        for inode in batch.inodes:
            inode.dirty = True
        if batch.inodes:
            first = batch.inodes[0]
            _merge(first.referenced, batch.referenced)
            _merge(first.released, batch.released)
        self._seen_changes = -1

    def stats(self) -> dict[str, float]:
        return {
            "commits": self.commits,
            "committed_inodes": self.committed_inodes,
            "last_commit_seconds": self.last_commit_seconds,
        }


def _merge(into: dict[int, int], more: dict[int, int]) -> None:
    for obj, nbytes in more.items():
        into[obj] = into.get(obj, 0) + nbytes
