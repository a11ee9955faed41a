"""Every referenced object's bytes against its digest table (layout.blocksums).

Each object's covered bytes are read once, in ranges of RANGE bytes, at most
READS ranges at a time across all objects, so memory stays near
READS * RANGE whatever the volume's size. A bad block becomes a problem
naming the object, the block's offset and the inodes whose bytes lie in it.
"""

from __future__ import annotations

import trio

from layout.blocksums import BLOCK_SIZE, BlockSums
from layout.errors import LayoutError
from layout.naming import object_name
from objfs.fsck.progress import Progress
from objfs.fsck.report import Problem, Report
from objfs.fsck.tasks import each
from objfs.fsck.walk import Walk, bare
from objfs.objects import read_block_sums
from objfs.storage import NotFound, ObjectStore

RANGE = 64 * BLOCK_SIZE  # 4 MiB per ranged GET
READS = 8  # ranges being read at once
OBJECTS = 4  # objects whose digest tables are read at once


class BlockCheck:
    def __init__(self, store: ObjectStore, walk: Walk, report: Report, progress: Progress) -> None:
        self.store = store
        self.walk = walk
        self.report = report
        self.progress = progress
        self.reads = trio.CapacityLimiter(READS)

    async def run(self, skip: set[int]) -> None:
        numbers = sorted(set(self.walk.uses) - skip)
        self.progress.start("objects", len(numbers))
        await each(numbers, self._object, OBJECTS)

    def _users(self, number: int, lo: int, hi: int) -> set[int]:
        """Inodes with bytes in [lo, hi) of the object."""
        return {inode for start, end, inode in self.walk.uses[number] if start < hi and end > lo}

    async def _object(self, number: int) -> None:
        try:
            sums = await read_block_sums(self.store, number)
        except LayoutError as exc:
            users = self._users(number, 0, 1 << 64)
            self.report.add(Problem("block", f"digest table: {bare(exc)}", number, None, users))
            return
        past = [start for start, end, _ in self.walk.uses[number] if end > sums.covered]
        if past:
            message = f"referenced bytes run past the {sums.covered} bytes the object holds"
            users = self._users(number, sums.covered, 1 << 64)
            self.report.add(Problem("extent", message, number, min(past), users))
        await each(range(0, sums.covered, RANGE), lambda at: self._range(number, sums, at), READS)
        self.progress.step()

    async def _range(self, number: int, sums: BlockSums, offset: int) -> None:
        length = min(RANGE, sums.covered - offset)
        async with self.reads:
            try:
                data = await self.store.get(object_name(number), offset, length)
            except NotFound:
                data = b""
            if len(data) != length:
                message = f"read {len(data)} bytes at {offset}, expected {length}"
                users = self._users(number, offset, offset + length)
                self.report.add(Problem("block", message, number, offset, users))
                return
            bad = sums.bad_blocks(offset, data)
        self.progress.read(length)
        for block in bad:
            end = min(block + BLOCK_SIZE, sums.covered)
            users = self._users(number, block, end)
            message = f"data block {block}+{end - block} fails its checksum"
            if not users:
                message += " (no inode uses its bytes any more)"
            self.report.add(Problem("block", message, number, block, users))
