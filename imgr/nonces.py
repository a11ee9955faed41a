"""Inode and object numbers that are never handed out twice, even across crashes.

A checkpoint records a ceiling per kind: no number at or above it was ever
handed out. imgr hands numbers out from memory below the last *durable*
ceiling, and each checkpoint raises the ceiling well ahead of the cursor, so
a request normally waits for nothing. One that would cross the durable
ceiling waits for the next checkpoint (which raises it) before it is
answered; after a crash imgr restarts from the recorded ceiling, above
everything any client may have seen.

imgr's own checkpoint objects may take numbers at or above the durable
ceiling (right after a restart every lower number may be in use). Such a
number was never handed to anyone, and nothing durable can refer to it, so
if a crash left an object of that number behind, the next checkpoint may
overwrite it: `take_for_checkpoint` says when.
"""

from __future__ import annotations

from dataclasses import dataclass

# How far ahead of the cursor a checkpoint puts the ceiling.
RESERVE = 1 << 20
MAX_RANGE = 1 << 16


@dataclass
class Nonces:
    cursor: int  # the next number to hand out
    durable: int  # the ceiling in the newest durable checkpoint
    demand: int = 0  # the highest end a waiting request asked for

    def take(self, count: int) -> int | None:
        """The first of `count` fresh numbers, or None: wait for a checkpoint."""
        if not 1 <= count <= MAX_RANGE:
            raise ValueError(f"count must be in 1..{MAX_RANGE}, got {count}")
        end = self.cursor + count
        if end > self.durable:
            self.demand = max(self.demand, end)
            return None
        first, self.cursor = self.cursor, end
        return first

    def take_for_checkpoint(self) -> tuple[int, bool]:
        """(number, may_overwrite) of the object a checkpoint is written into."""
        first, self.cursor = self.cursor, self.cursor + 1
        return first, first >= self.durable

    def ceiling(self) -> int:
        """The ceiling the checkpoint being taken records."""
        return max(self.durable, max(self.cursor, self.demand) + RESERVE)

    def made_durable(self, ceiling: int) -> None:
        self.durable = max(self.durable, ceiling)

    @property
    def needs_checkpoint(self) -> bool:
        """Running low, or a request waits: the next checkpoint should raise the ceiling."""
        return self.durable - self.cursor < RESERVE // 2 or self.demand > self.durable
