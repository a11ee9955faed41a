"""The loaded tree as manifest entries, from the job database (no second read of the source)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import msgpack

from layout.records import FileType
from objfs.load.job import Job
from objfs.load.pack import hash_path
from objfs.manifest import Entry, path_key, xattrs_digest

TYPE_NAMES = {
    FileType.DIRECTORY: "dir",
    FileType.REGULAR: "file",
    FileType.SYMLINK: "symlink",
    FileType.FIFO: "fifo",
    FileType.SOCKET: "socket",
    FileType.CHAR_DEVICE: "char",
    FileType.BLOCK_DEVICE: "block",
}


def loaded_entries(job: Job, source: Path) -> Iterator[Entry]:
    """Every path the volume holds, sorted by path, as `objfs verify` compares them.

    A file packed by a run without --manifest has no hash yet: it is read again.
    """
    db = job.db
    db.row_factory = sqlite3.Row
    query = "SELECT inode, path FROM inodes WHERE type = ?"
    dirs = {row["inode"]: bytes(row["path"]) for row in db.execute(query, (FileType.DIRECTORY,))}
    rows = db.execute("SELECT * FROM inodes WHERE head_object IS NOT NULL")
    inodes = {row["inode"]: row for row in rows}
    paths: dict[int, list[bytes]] = {}
    for parent, name, inode in db.execute("SELECT parent, name, inode FROM links"):
        if inode in inodes and parent in inodes:
            base = dirs[parent]
            paths.setdefault(inode, []).append(bytes(name) if base == b"." else base + b"/" + name)
    paths[1] = [b"."]
    named = sorted(((p, inode) for inode, group in paths.items() for p in group), key=_by_path)
    first = {inode: min(group, key=path_key) for inode, group in paths.items() if len(group) > 1}
    for path, inode in named:
        link = first.get(inode)
        yield _entry(inodes[inode], path, None if link == path else link, os.fsencode(source))


def _entry(row: sqlite3.Row, path: bytes, link: bytes | None, source: bytes) -> Entry:
    kind = FileType(row["type"])
    file_hash = None
    if kind is FileType.REGULAR:
        file_hash = row["hash"] or hash_path(os.path.join(source, row["path"]), row["size"])
    elif kind is FileType.SYMLINK:
        file_hash = hashlib.sha256(row["symlink"]).hexdigest()
    xattrs = dict(msgpack.unpackb(row["xattrs"])) if row["xattrs"] else {}
    return Entry(
        path=path,
        type=TYPE_NAMES[kind],
        size=row["size"],
        mode=row["mode"],
        uid=row["uid"],
        gid=row["gid"],
        mtime_ns=row["mtime_ns"],
        hash=file_hash,
        rdev=row["rdev"],
        link=link,
        xattrs=xattrs_digest(xattrs),
    )


def _by_path(pair: tuple[bytes, int]) -> tuple[bytes, ...]:
    return path_key(pair[0])
