"""iclient's library API: a POSIX filesystem over inode numbers, no kernel needed.

    async with Mount.open(config) as mount:        # iclient.mount
        fs = mount.fs                               # iclient.fs.FileSystem
        attrs = await fs.create(ROOT, b"a", 0o644, ctx)
        await fs.write(attrs.inode, 0, b"hello")
        await fs.fsync(attrs.inode)

FileSystem's methods mirror the FUSE requests (lookup, getattr, setattr,
mknod, mkdir, unlink, rmdir, rename, link, symlink, readlink, open, read,
write, release, fsync, readdir, statfs, the xattr calls, access, forget) and
take inode numbers and byte-string names. They raise FsError with the errno
POSIX asks for; objfs.rpc.RpcError (its .errno), layout.errors.LayoutError
and objfs.storage.StorageError (EIO) may also escape, and the FUSE front end
(iclient.fuse) turns all of them into errno replies. Permission checks
beyond what the kernel does with default_permissions (ownership for chmod,
sticky directories) are made here against the caller's Context, so library
users get them too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ROOT_INODE = 1
DEFAULT_HTTP_PORT = 15347


class FsError(OSError):
    """An errno for the caller, with a message for the logs."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(code, message or os.strerror(code))


@dataclass(frozen=True, slots=True)
class Context:
    """Who asks: the caller's uid, gid and supplementary groups."""

    uid: int = 0
    gid: int = 0
    groups: tuple[int, ...] = ()
    # The kernel checked permissions already (FUSE default_permissions); its own
    # changes, like dropping setuid on a write, come as setattrs we must not refuse.
    checked: bool = False

    @property
    def root(self) -> bool:
        return self.uid == 0

    def in_group(self, gid: int) -> bool:
        return gid == self.gid or gid in self.groups


ROOT_CONTEXT = Context()
