"""The safe fixes: delete orphan objects, move lost inodes into /lost+found.

Both act only on what a complete walk proved: an orphan is deleted only if the
walk read every structure (an unreadable page might have referred to it),
and lost inodes are moved only when, besides, the space accounting agrees
(their move releases old heads and pages, and wrong counts could then let
imgr delete an object still in use). Anything else is reported, not fixed.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import replace

from ickpt.store import CheckpointStore
from imgr.accounts import AccountingError
from layout.btree import BTree
from layout.codec import Location
from layout.naming import object_name
from layout.records import DirEntry, FileType, InodeHead
from objfs.fsck.checks import ROOT, movable
from objfs.fsck.edit import VolumeEdit
from objfs.fsck.report import Lost, Orphan, Report
from objfs.fsck.tasks import each
from objfs.fsck.walk import Walk
from objfs.storage import NotFound, ObjectStore

DELETES = 16  # deletions in flight
LOST_AND_FOUND = b"lost+found"


class RepairRefused(Exception):
    """A repair that would not be safe: said in the report, not made."""


async def delete_orphans(store: ObjectStore, orphans: list[Orphan]) -> None:
    async def delete(orphan: Orphan) -> None:
        try:
            await store.delete(object_name(orphan.number))
        except NotFound:
            pass  # gone already: a run interrupted after deleting it
        orphan.deleted = True

    await each(orphans, delete, DELETES)


async def repair(
    store: ObjectStore, ckpt: CheckpointStore, volume: str, walk: Walk, report: Report
) -> None:
    """Make the safe fixes of what `report` found; say in it why any was not made."""
    if not report.complete:
        report.not_repaired.append(
            "orphan objects and lost inodes are left alone: the walk could not read "
            "everything, so they may be referenced from what it missed"
        )
        return
    await delete_orphans(store, report.orphans)
    if not report.lost:
        return
    if any(p.kind in ("accounting", "space") for p in report.problems):
        report.not_repaired.append("lost inodes are not moved while the space accounting is wrong")
        return
    try:
        await move_lost(await VolumeEdit.open(store, ckpt, volume), walk, report.lost)
    except (RepairRefused, AccountingError) as exc:
        report.not_repaired.append(f"lost inodes not moved: {exc}")


async def move_lost(edit: VolumeEdit, walk: Walk, lost: list[Lost]) -> None:
    """Give every lost inode a name under /lost+found, in one checkpoint."""
    if edit.record != walk.record:
        raise RepairRefused("the checkpoint moved since the walk: run fsck again")
    now = time.time_ns()
    number, directory, tree, old = await _lost_and_found(edit, now)
    moved: dict[int, str] = {}
    for inode in movable(walk, lost):
        head, location = await edit.head(inode)
        name = await _free_name(tree, f"#{inode}".encode())
        await tree.put(name, DirEntry(inode, head.type))
        await edit.put(replace(head, links=((number, name),), ctime_ns=now), old=location)
        moved[inode] = f"/lost+found/{os.fsdecode(name)}"
    await edit.put(replace(directory, mtime_ns=now, ctime_ns=now), tree, old)
    await edit.commit()
    _along(walk, moved, {item.inode for item in lost})
    for item in lost:
        item.moved_to = moved.get(item.inode)


async def _lost_and_found(
    edit: VolumeEdit, now: int
) -> tuple[int, InodeHead, BTree, Location | None]:
    """/lost+found (made with mode 0700 if missing): its number, head, tree, old location."""
    root, root_location = await edit.head(ROOT)
    root_tree = edit.tree(root)
    entry = await root_tree.get(LOST_AND_FOUND)
    if entry is not None:
        if entry.type is not FileType.DIRECTORY:
            raise RepairRefused("/lost+found is not a directory")
        head, location = await edit.head(entry.inode)
        return entry.inode, head, edit.tree(head), location
    number = edit.new_inode()
    head = InodeHead(
        number, FileType.DIRECTORY, 0o700, root.uid, root.gid, now, now, now, now,
        links=((ROOT, LOST_AND_FOUND),),
    )  # fmt: skip
    await root_tree.put(LOST_AND_FOUND, DirEntry(number, FileType.DIRECTORY))
    await edit.put(replace(root, mtime_ns=now, ctime_ns=now), root_tree, root_location)
    return number, head, edit.tree(head), None


async def _free_name(tree: BTree, name: bytes) -> bytes:
    candidate, n = name, 0
    while await tree.get(candidate) is not None:
        n += 1
        candidate = name + f".{n}".encode()
    return candidate


def _along(walk: Walk, moved: dict[int, str], lost: set[int]) -> None:
    """Add the paths of what the moved lost directories hold (they came with them)."""
    queue = deque(moved)
    children: dict[int, list[tuple[bytes, int]]] = {}
    for inode in lost:
        for entry in walk.named.get(inode, []):
            if entry.parent in lost:
                children.setdefault(entry.parent, []).append((entry.name, inode))
    while queue:
        parent = queue.popleft()
        for name, child in children.get(parent, ()):
            if child not in moved:
                moved[child] = f"{moved[parent]}/{os.fsdecode(name)}"
                queue.append(child)
