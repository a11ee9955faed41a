"""The checks that need the whole walk: names, links, reachability, lost inodes, space.

- Directories reachable from the root form a tree: each is entered once,
  through the one entry its link table names.
- Every inode's link table (its nlink is the table's length) names exactly
  the directory entries that name it, and each entry's type is its head's.
- An inode in the table that no reachable directory names is lost, unless
  the superblock lists it as deleted while open (an orphan, kept on purpose
  until its last close; its head keeps the links it had when it was deleted).
- The superblock's referenced bytes per object are what the walk counted.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field

from layout.naming import object_name
from layout.records import FileType
from objfs.fsck.report import TABLE, Lost, Problem, Report
from objfs.fsck.walk import Head, Walk

ROOT = 1  # imgr.api.ROOT_INODE
MAX_DEPTH = 64  # unreachable directories followed up their link tables (they may loop)


@dataclass
class Namespace:
    """Paths of the reachable directories, and from them the paths of any inode."""

    walk: Walk
    dirs: dict[int, str] = field(default_factory=dict)  # reachable directory -> its path

    def path(self, parent: int, name: bytes, depth: int = 0) -> str:
        """The path of entry `name` in directory `parent`, reachable or not."""
        base = self.dirs.get(parent)
        if base is None:
            head = self.walk.heads.get(parent)
            if head is None or not head.links or depth > MAX_DEPTH:
                base = f"(directory inode {parent})"
            else:  # an unreachable directory: where its own link table puts it
                base = self.path(*head.links[-1], depth + 1)
        return f"{base.rstrip('/')}/{os.fsdecode(name)}"

    def paths_of(self, inode: int) -> list[str]:
        if inode == TABLE:
            return ["(the inode table)"]
        if inode in self.dirs:
            return [self.dirs[inode]]
        entries = self.walk.named.get(inode, [])
        reachable = [self.path(e.parent, e.name) for e in entries if e.parent in self.dirs]
        if reachable:
            return reachable
        return [f"{self.last_name(inode)} (unreachable inode {inode})"]

    def last_name(self, inode: int) -> str:
        """Where the inode's link table last put it."""
        head = self.walk.heads.get(inode)
        if head is None or not head.links:
            return f"inode {inode}"
        return self.path(*head.links[-1])


def analyse(walk: Walk, report: Report) -> Namespace:
    namespace = Namespace(walk)
    if _root_ok(walk, report):
        _tree(walk, namespace)
    orphans = set(walk.superblock.orphans) if walk.superblock else set()
    lost = _lost(walk, namespace, orphans)
    for inode, head in walk.heads.items():
        if inode in orphans:
            _orphan(walk, report, inode)
        elif inode not in lost:
            _links(walk, report, inode, head)
    _dangling(walk, report, namespace)
    report.lost = [
        Lost(inode, walk.heads[inode].type.name, namespace.last_name(inode)) for inode in lost
    ]
    _space(walk, report)
    return namespace


def _root_ok(walk: Walk, report: Report) -> bool:
    head = walk.heads.get(ROOT)
    if head is None:
        if ROOT not in walk.table and walk.superblock is not None:
            report.add(Problem("structure", "the root directory (inode 1) is not in the table"))
        return False
    if head.type is not FileType.DIRECTORY:
        report.add(Problem("structure", f"inode 1, the root, is a {head.type.name}", inodes={ROOT}))
        return False
    return True


def _tree(walk: Walk, namespace: Namespace) -> None:
    """Enter every directory reachable from the root once, breadth first."""
    children: dict[int, list[tuple[bytes, int]]] = {}
    for inode, entries in walk.named.items():
        head = walk.heads.get(inode)
        if head is not None and head.type is FileType.DIRECTORY:
            for entry in entries:
                children.setdefault(entry.parent, []).append((entry.name, inode))
    namespace.dirs[ROOT] = "/"
    queue = deque([ROOT])
    while queue:
        parent = queue.popleft()
        for name, child in children.get(parent, ()):
            if child not in namespace.dirs:  # a second name is the link check's to report
                namespace.dirs[child] = namespace.path(parent, name)
                queue.append(child)


def _lost(walk: Walk, namespace: Namespace, orphans: set[int]) -> list[int]:
    """Inodes of the table no reachable directory names, but for the orphans."""
    lost = []
    for inode in walk.heads:
        if inode == ROOT or inode in namespace.dirs:
            continue
        entries = walk.named.get(inode, [])
        if any(e.parent in namespace.dirs for e in entries):
            continue
        if inode in orphans and not entries:
            continue
        lost.append(inode)
    return sorted(lost)


def movable(walk: Walk, lost: list[Lost]) -> list[int]:
    """The lost inodes to move into /lost+found: those no lost directory names.

    What a lost directory names comes along with it. Inodes only named from
    inside a cycle of lost directories have no such top and stay where they are.
    """
    numbers = {item.inode for item in lost}
    return [
        n for n in sorted(numbers) if not any(e.parent in numbers for e in walk.named.get(n, []))
    ]


def _orphan(walk: Walk, report: Report, inode: int) -> None:
    """Deleted while open: no directory names it; its head keeps the links it had."""
    if walk.named.get(inode):
        message = f"inode {inode} is listed as deleted while open, but a directory names it"
        report.add(Problem("links", message, inodes={inode}))


def _links(walk: Walk, report: Report, inode: int, head: Head) -> None:
    """The link table names exactly the entries naming the inode, with its type.

    Links through a directory that could not be read whole are left out on
    both sides: its entries are not all known.
    """
    damaged = walk.damaged
    entries = walk.named.get(inode, [])
    have = {(e.parent, e.name) for e in entries if e.parent not in damaged}
    want = {link for link in head.links if link[0] not in damaged}
    if have != want:
        report.add(Problem("links", _mismatch(inode, head, have, want), inodes={inode}))
    for entry in entries:
        if entry.type is not head.type:
            message = (
                f"the entry {entry.name!r} of directory inode {entry.parent} says inode {inode} "
                f"is a {entry.type.name}; its head says {head.type.name}"
            )
            report.add(Problem("links", message, inodes={inode, entry.parent}))


def _mismatch(inode: int, head: Head, have: set, want: set) -> str:
    def show(links: set) -> str:
        return ", ".join(f"({p}, {os.fsdecode(n)!r})" for p, n in sorted(links)) or "none"

    return (
        f"inode {inode} has nlink {len(head.links)}: its link table names {show(want)}, "
        f"the directories name it {len(have)} times: {show(have)}"
    )


def _dangling(walk: Walk, report: Report, namespace: Namespace) -> None:
    """Entries naming inodes the table does not hold."""
    for inode, entries in walk.named.items():
        if inode in walk.table or TABLE in walk.damaged:
            continue
        for entry in entries:
            message = f"a directory entry names inode {inode}, which is not in the inode table"
            problem = Problem("links", message, inodes={entry.parent})
            problem.paths.append(namespace.path(entry.parent, entry.name))
            report.add(problem)


def _space(walk: Walk, report: Report) -> None:
    """The superblock's per-object referenced bytes against the walk's count."""
    superblock = walk.superblock
    if superblock is None or not walk.heads_known:
        return
    counted, recorded = walk.referenced, superblock.referenced
    for obj in sorted({*counted, *recorded}):
        if counted.get(obj, 0) != recorded.get(obj, 0):
            message = (
                f"space accounting: the superblock counts {recorded.get(obj, 0)} referenced bytes "
                f"in object {object_name(obj)}, the walk found {counted.get(obj, 0)}"
            )
            report.add(Problem("space", message))
    report.counts["bytes_referenced"] = sum(counted.values())
