"""The scan: every entry of the source tree into the job, each with its inode number.

Depth first, names in byte order, so the numbering is fixed by the tree. The
root gets inode 1 (the volume's root); a file with several hard links gets
one number, taken at its first path, and a link row per path. An entry that
cannot be read (a directory that refuses listing, a file gone between the
listing and its lstat) is recorded as a problem, named at the end, and
left out; an unreadable directory is kept, empty. Paths matching an
--exclude pattern (searched in the path relative to the source) are left
out, with everything under them.

Runs in a worker thread with its own connection to the job database.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

import msgpack

from imgr.api import ROOT_INODE
from layout.records import XATTR_TOTAL_MAX, FileType
from objfs.copyin import local_xattrs
from objfs.load.job import Job

log = logging.getLogger(__name__)

BATCH = 2000  # rows per transaction

_TYPES = {
    stat.S_IFDIR: FileType.DIRECTORY,
    stat.S_IFREG: FileType.REGULAR,
    stat.S_IFLNK: FileType.SYMLINK,
    stat.S_IFIFO: FileType.FIFO,
    stat.S_IFSOCK: FileType.SOCKET,
    stat.S_IFCHR: FileType.CHAR_DEVICE,
    stat.S_IFBLK: FileType.BLOCK_DEVICE,
}
_DEVICES = (FileType.CHAR_DEVICE, FileType.BLOCK_DEVICE)


class XattrsTooLarge(Exception):
    """More xattr bytes than an inode head holds (layout.records.XATTR_TOTAL_MAX)."""


def read_xattrs(path: bytes) -> bytes | None:
    """The entry's xattrs as msgpack of sorted [name, value] pairs; None without any."""
    pairs = local_xattrs(path)
    if sum(len(name) + len(value) for name, value in pairs) > XATTR_TOTAL_MAX:
        raise XattrsTooLarge(f"its xattrs exceed {XATTR_TOTAL_MAX} bytes: loaded without them")
    return msgpack.packb(pairs, use_bin_type=True) if pairs else None


class Scan:
    def __init__(
        self,
        job: Job,
        source: Path,
        counted: Callable[[int], None],
        excludes: Sequence[re.Pattern[str]] = (),
    ) -> None:
        self.job, self.root, self.counted = job, os.fsencode(source), counted
        self.excludes = excludes
        self.next_inode = ROOT_INODE
        self.linked: dict[tuple[int, int], int] = {}  # (st_dev, st_ino) -> inode, nlink > 1
        self.rows: list[tuple] = []
        self.links: list[tuple[int, bytes, int]] = []
        self.problems: list[tuple[bytes, str]] = []
        self.directories: dict[bytes, int] = {}  # relative path -> inode, until listed

    def run(self) -> int:
        """Scan the whole tree; the number of entries found."""
        with self.job.transaction() as db:
            for table in ("inodes", "links", "problems"):
                db.execute(f"DELETE FROM {table}")  # a scan cut short earlier
        root_stat = os.lstat(self.root)
        if not stat.S_ISDIR(root_stat.st_mode):
            raise NotADirectoryError(f"{self.root.decode(errors='replace')} is not a directory")
        self._add(b"", root_stat)
        stack = [b""]
        while stack:
            relative = stack.pop()
            stack.extend(reversed(self._children(relative)))
        self._write()
        return self.next_inode - ROOT_INODE

    def _children(self, relative: bytes) -> list[bytes]:
        """Add the entries of one directory; its subdirectories, to descend into."""
        parent = self.directories.pop(relative)
        path = os.path.join(self.root, relative) if relative else self.root
        try:
            with os.scandir(path) as listing:
                names = sorted(entry.name for entry in listing)
        except OSError as exc:
            self.problems.append((relative or b".", f"not listed: {exc.strerror}"))
            return []
        subdirs = []
        for name in names:
            child = relative + b"/" + name if relative else name
            if any(pattern.search(os.fsdecode(child)) for pattern in self.excludes):
                continue
            try:
                st = os.lstat(os.path.join(self.root, child))
                inode = self._add(child, st)
            except OSError as exc:
                self.problems.append((child, f"vanished during the scan: {exc.strerror}"))
                continue
            self.links.append((parent, name, inode))
            if stat.S_ISDIR(st.st_mode):
                subdirs.append(child)
        if len(self.rows) >= BATCH:
            self._write()
        return subdirs

    def _add(self, relative: bytes, st: os.stat_result) -> int:
        kind = _TYPES.get(stat.S_IFMT(st.st_mode))
        if kind is None:
            raise ValueError(f"{relative!r}: unknown file type {stat.S_IFMT(st.st_mode):o}")
        key = (st.st_dev, st.st_ino)
        if kind is not FileType.DIRECTORY and st.st_nlink > 1 and key in self.linked:
            return self.linked[key]
        path = os.path.join(self.root, relative) if relative else self.root
        symlink = os.readlink(path) if kind is FileType.SYMLINK else None
        try:
            xattrs = read_xattrs(path)
        except XattrsTooLarge as exc:
            self.problems.append((relative or b".", str(exc)))
            xattrs = None
        inode, self.next_inode = self.next_inode, self.next_inode + 1
        if kind is not FileType.DIRECTORY and st.st_nlink > 1:
            self.linked[key] = inode
        if kind is FileType.DIRECTORY:
            self.directories[relative] = inode
        size = {FileType.REGULAR: st.st_size, FileType.SYMLINK: len(symlink or b"")}.get(kind, 0)
        self.rows.append((
            inode, int(kind), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
            st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns, size,
            st.st_rdev if kind in _DEVICES else 0, relative or b".", symlink, xattrs,
        ))  # fmt: skip
        return inode

    def _write(self) -> None:
        with self.job.transaction() as db:
            db.executemany(
                "INSERT INTO inodes (inode, type, mode, uid, gid, atime_ns, mtime_ns, ctime_ns, "
                "size, rdev, path, symlink, xattrs) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                self.rows,
            )
            db.executemany("INSERT INTO links VALUES (?, ?, ?)", self.links)
            db.executemany("INSERT INTO problems VALUES (?, ?)", self.problems)
        self.counted(len(self.rows))
        self.rows, self.links, self.problems = [], [], []
