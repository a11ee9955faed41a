"""Which objects of a volume are still needed, and which may be deleted when.

Every object holds records (file data, B+tree pages, inode heads) that are
referenced or not; `referenced` counts, per object, the bytes still in use.
An object whose count reaches zero is garbage, but the last durable
checkpoint may still need it, so it is deleted in three steps:

1. `garbage`: unreferenced since the last checkpoint snapshot;
2. the next snapshot moves it into that checkpoint's `deleting` list;
3. once that checkpoint is durable, it is deleted (and dropped from the list
   the checkpoint after). A restarted imgr deletes the `deleting` list of the
   checkpoint it starts from again; deleting a missing object is harmless.

The object holding the current superblock is `pinned` even with no bytes
counted: superblocks count neither as written nor as referenced bytes (their
size would depend on the counts they hold).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from layout.naming import object_name

log = logging.getLogger(__name__)


class AccountingError(ValueError):
    """A change that would make a count negative or names an unknown object."""


@dataclass
class Accounts:
    referenced: dict[int, int] = field(default_factory=dict)
    object_count: int = 0
    bytes_written: int = 0
    garbage: set[int] = field(default_factory=set)
    deleting: set[int] = field(default_factory=set)
    pinned: int | None = None
    deleted: int = 0  # objects deleted since this imgr started
    # Sizes of objects written while this imgr ran (for the garbage bytes figure).
    sizes: dict[int, int] = field(default_factory=dict)

    def check(
        self, written: dict[int, int], referenced: dict[int, int], released: dict[int, int]
    ) -> None:
        """Raise AccountingError unless the change could be applied."""
        for obj, size in written.items():
            if obj in self.referenced or obj in self.sizes or size < 0:
                raise AccountingError(f"object {object_name(obj)} reported written twice")
        for obj, nbytes in released.items():
            have = self.referenced.get(obj, 0) + referenced.get(obj, 0)
            if nbytes > have:
                raise AccountingError(
                    f"releasing {nbytes} bytes of object {object_name(obj)}, only {have} referenced"
                )
        for obj in referenced:
            if obj in self.garbage or obj in self.deleting:
                raise AccountingError(f"object {object_name(obj)} is already garbage")

    def apply(
        self, written: dict[int, int], referenced: dict[int, int], released: dict[int, int]
    ) -> None:
        """Apply a checked change; objects left with no bytes become garbage."""
        for obj, size in written.items():
            self.object_count += 1
            self.bytes_written += size
            self.sizes[obj] = size
        for obj, nbytes in referenced.items():
            if nbytes:
                self.referenced[obj] = self.referenced.get(obj, 0) + nbytes
        for obj, nbytes in released.items():
            left = self.referenced.get(obj, 0) - nbytes
            if left > 0:
                self.referenced[obj] = left
            else:
                self.referenced.pop(obj, None)
        for obj in {*written, *released}:
            if obj not in self.referenced and obj != self.pinned:
                self.garbage.add(obj)

    def snapshot(self, segment: int, size: int, released: dict[int, int]) -> tuple[int, ...]:
        """The `deleting` list of the checkpoint being written into object `segment`.

        `size` bytes of B+tree pages went into it and the pages they replace
        are `released`. The superblock it will hold is pinned, and the one it
        replaces goes straight to `deleting`: object 0's backup is rewritten
        before anything is deleted.
        """
        old, self.pinned = self.pinned, segment
        self.apply({segment: size}, {segment: size}, released)
        self.deleting |= self.garbage
        self.garbage = set()
        if old is not None and old not in self.referenced:
            self.deleting.add(old)
        return tuple(sorted(self.deleting))

    def forget(self, obj: int) -> None:
        """`obj` was deleted from the store."""
        if obj in self.deleting:
            self.deleting.discard(obj)
            self.object_count -= 1
            self.deleted += 1
            self.sizes.pop(obj, None)

    @property
    def bytes_referenced(self) -> int:
        return sum(self.referenced.values())

    @property
    def garbage_bytes(self) -> int:
        """Bytes of garbage objects, as far as their sizes are known."""
        return sum(self.sizes.get(obj, 0) for obj in self.garbage | self.deleting)
