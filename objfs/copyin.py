"""Local entries into a volume through iclient's filesystem library: data, then metadata.

What `objfs load --into` and `objfs watch` share: a file's data copied run by
run (holes are left holes), and an inode's owner, mode, times and xattrs set
as the local entry has them, in the order that keeps them (a chown clears
setuid, so the mode comes after it; times come last but for xattrs, which do
not touch them).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import trio

from iclient.api import ROOT_CONTEXT
from iclient.fs import FileSystem
from objfs.load.pack import data_runs

WRITE_BYTES = 1 << 20  # one library write


@dataclass(frozen=True, slots=True)
class Metadata:
    mode: int  # permission bits with setuid, setgid, sticky
    uid: int
    gid: int
    atime_ns: int
    mtime_ns: int
    xattrs: tuple[tuple[bytes, bytes], ...] = ()

    @classmethod
    def of(cls, st: os.stat_result, xattrs: Iterable[tuple[bytes, bytes]] = ()) -> Metadata:
        mode = st.st_mode & 0o7777
        return cls(mode, st.st_uid, st.st_gid, st.st_atime_ns, st.st_mtime_ns, tuple(xattrs))


def local_xattrs(path: bytes) -> list[tuple[bytes, bytes]]:
    """A local entry's xattrs, sorted by name (none where the filesystem has none)."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM):
            return []
        raise
    pairs = []
    for name in sorted(os.fsencode(n) for n in names):
        try:
            pairs.append((name, os.getxattr(path, name, follow_symlinks=False)))
        except OSError as exc:
            if exc.errno != errno.ENODATA:  # removed since the listing
                raise
    return pairs


async def set_metadata(fs: FileSystem, number: int, meta: Metadata) -> None:
    """Make the inode's owner, mode, times and xattrs those of `meta` (others removed)."""
    await fs.setattr(number, ROOT_CONTEXT, uid=meta.uid, gid=meta.gid)
    times = {"atime_ns": meta.atime_ns, "mtime_ns": meta.mtime_ns}
    await fs.setattr(number, ROOT_CONTEXT, mode=meta.mode, **times)
    wanted = dict(meta.xattrs)
    for name in await fs.listxattr(number):
        if name not in wanted:
            await fs.removexattr(number, name)
    for name, value in wanted.items():
        await fs.setxattr(number, name, value, 0)


async def copy_data(
    fs: FileSystem, number: int, fd: int, size: int, seen: Callable[[bytes], None]
) -> None:
    """The first `size` bytes of the open local file into inode `number`, holes as holes;
    `seen` gets each piece of data as it goes."""
    runs = await trio.to_thread.run_sync(lambda: list(data_runs(fd, size)))
    for start, end in runs:
        offset = start
        while offset < end:
            length = min(end - offset, WRITE_BYTES)
            data = await trio.to_thread.run_sync(os.pread, fd, length, offset)
            if not data:
                raise OSError(errno.EIO, "the file shrank while it was read")
            await fs.write(number, offset, data, ROOT_CONTEXT)
            seen(data)
            offset += len(data)
    await fs.setattr(number, ROOT_CONTEXT, size=size)  # a trailing hole
