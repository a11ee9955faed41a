"""The container against the walk: objects referenced but missing, objects nothing references.

Only objfs-named objects count (`layout.naming.object_number` parses a name
or refuses it); object 0, the checkpoint backup, is never an orphan, nor is
an object the superblock lists as being deleted (imgr deletes those itself).
"""

from __future__ import annotations

from layout.errors import LayoutError
from layout.naming import object_number
from objfs.fsck.report import Orphan, Problem, Report
from objfs.fsck.walk import Walk
from objfs.storage import ObjectInfo, ObjectStore

BACKUP = 0


async def listing(store: ObjectStore) -> dict[int, ObjectInfo]:
    """The container's objfs objects by number."""
    found = {}
    async for info in store.list():
        try:
            found[object_number(info.name)] = info
        except LayoutError:
            continue  # a foreign object: none of fsck's business
    return found


def orphans(walk: Walk, listed: dict[int, ObjectInfo]) -> list[Orphan]:
    """Listed objects that the walk, and the superblock's own counts, never reach."""
    superblock = walk.superblock
    kept = {BACKUP, *walk.uses}
    if superblock is not None:
        kept.update(superblock.deleting)
        kept.update(superblock.referenced)
    return [
        Orphan(number, info.size, info.modified)
        for number, info in sorted(listed.items())
        if number not in kept
    ]


def missing(walk: Walk, listed: dict[int, ObjectInfo], report: Report) -> set[int]:
    """Objects the walk reached that the container does not hold; each is one problem.

    Problems the walk found inside such an object are folded into it.
    """
    gone = set(walk.uses) - set(listed)
    for number in sorted(gone):
        inodes = {inode for _, _, inode in walk.uses[number]}
        problem = Problem("missing", "the object is missing", number, None, inodes)
        for other in [p for p in report.problems if p.object == number]:
            problem.inodes |= other.inodes
            report.problems.remove(other)
        report.add(problem)
    too_new = sorted(n for n in walk.uses if n >= walk.record.next_object)
    for number in too_new:
        inodes = {inode for _, _, inode in walk.uses[number]}
        message = f"referenced, but at or above the next object number {walk.record.next_object}"
        report.add(Problem("structure", message, number, None, inodes))
    return gone
