"""Inode numbers a mount fetched and nobody else has seen yet: leased to it implicitly.

A mount that creates files asks for a range of fresh inode numbers and then
changes them; holding an exclusive lease entry per inode would cost a Lease
call and a few hundred bytes each (a million created files: a million
calls). Nobody else can know those numbers until the mount publishes them
in a directory, so the range itself stands for an exclusive lease of each
number in it. When another mount asks for a lease on one of them, that
number leaves the range and becomes an ordinary exclusive lease of its
owner, which is then interrupted like any holder.
"""

from __future__ import annotations

from sortedcontainers import SortedDict


class FreshInodes:
    def __init__(self) -> None:
        # Disjoint ranges (nonces are unique): start -> (end, mount).
        self._ranges: SortedDict = SortedDict()

    def add(self, mount: str, first: int, count: int) -> None:
        self._ranges[first] = (first + count, mount)

    def owner(self, inode: int) -> str | None:
        """The mount whose fresh range holds `inode`, if any."""
        i = self._ranges.bisect_right(inode) - 1
        if i < 0:
            return None
        start, (end, mount) = self._ranges.peekitem(i)
        return mount if start <= inode < end else None

    def take(self, inode: int) -> str | None:
        """Remove `inode` from its range; the mount that owned it, if any."""
        mount = self.owner(inode)
        if mount is None:
            return None
        i = self._ranges.bisect_right(inode) - 1
        start, (end, _) = self._ranges.popitem(i)
        if start < inode:
            self._ranges[start] = (inode, mount)
        if inode + 1 < end:
            self._ranges[inode + 1] = (end, mount)
        return mount

    def drop(self, mount: str) -> None:
        """The mount is gone: its fresh numbers are nobody's."""
        for start in [s for s, (_, m) in self._ranges.items() if m == mount]:
            del self._ranges[start]

    def __len__(self) -> int:
        return len(self._ranges)
