"""The kernel's view: pyfuse3 requests turned into iclient.fs calls, errors into errnos.

Kernel caches: entries and attributes are cached for `cache_seconds` and
file pages across opens, because a mount's lease says nobody else changes
what it holds. When a lease is lost (imgr interrupted it for another mount)
the inode is invalidated in the kernel, with every name the kernel may
have cached under it when it is a directory.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeVar

import pyfuse3
import trio

from iclient.api import Context
from iclient.fs import FileSystem
from iclient.inode import Attributes, Inode
from layout.errors import LayoutError
from layout.records import NAME_MAX
from objfs.rpc import RpcError
from objfs.storage import StorageError

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
READDIR_BATCH = 128  # entries whose heads load together
TOTAL_BLOCKS = 1 << 40  # statfs: object stores have no fixed size; say 512 TiB of 512 B blocks


def _errnos(method: F) -> F:
    """Every failure becomes an errno reply; unexpected ones are logged with their object."""

    @functools.wraps(method)
    async def wrapper(*args: Any) -> Any:
        try:
            return await method(*args)
        except pyfuse3.FUSEError:
            raise
        except OSError as exc:
            raise pyfuse3.FUSEError(exc.errno or errno.EIO) from None
        except RpcError as exc:
            log.warning("%s: imgr said %s", method.__name__, exc)
            raise pyfuse3.FUSEError(exc.errno) from None
        except (LayoutError, StorageError) as exc:
            log.error("%s: %s", method.__name__, exc)
            raise pyfuse3.FUSEError(errno.EIO) from None

    return wrapper  # type: ignore[return-value]


def _context(ctx: pyfuse3.RequestContext) -> Context:
    return Context(ctx.uid, ctx.gid, checked=True)


class DirHandle:
    """An open directory: every name handed out, so a cookie always resumes after it."""

    def __init__(self, inode: int) -> None:
        self.inode = inode
        self.names: list[bytes] = []


class FileHandle:
    """An open file: which inode, and who opened it (a write by them may drop setuid)."""

    __slots__ = ("inode", "context")

    def __init__(self, inode: int, context: Context) -> None:
        self.inode = inode
        self.context = context


class FuseOperations(pyfuse3.Operations):
    supports_dot_lookup = False
    enable_writeback_cache = False

    def __init__(self, fs: FileSystem, cache_seconds: float = 60.0) -> None:
        super().__init__()
        self.fs = fs
        self.cache_seconds = cache_seconds
        self._dirs: dict[int, DirHandle] = {}
        self._files: dict[int, FileHandle] = {}
        self._next_handle = 1
        self._kernel_names: dict[int, set[bytes]] = {}  # directory -> names the kernel may cache
        self._kernel_epochs: dict[int, int] = {}  # inode -> epoch its cached pages are from
        self._invalidations: trio.MemorySendChannel[Inode] | None = None
        self.initialized = trio.Event()  # the kernel's INIT is answered: the mount is live
        fs.inodes.on_stale = self._stale

    def init(self) -> None:
        self.initialized.set()

    # ------------------------------------------------------------ kernel caches

    async def run_invalidations(self) -> None:
        """Invalidate kernel caches off the request path (the kernel may be waiting on us)."""
        send, receive = trio.open_memory_channel[Inode](10_000)
        self._invalidations = send
        async for inode in receive:
            names = self._kernel_names.pop(inode.number, set()) if inode.is_dir else set()
            await trio.to_thread.run_sync(self._invalidate, inode.number, names)

    @staticmethod
    def _invalidate(number: int, names: set[bytes]) -> None:
        for name in names:
            try:
                pyfuse3.invalidate_entry(number, name)
            except OSError:
                pass  # the kernel had dropped it already
        try:
            pyfuse3.invalidate_inode(number)
        except OSError:
            pass

    def _stale(self, inode: Inode) -> None:
        if self._invalidations is not None:
            try:
                self._invalidations.send_nowait(inode)
            except trio.WouldBlock:
                log.warning("kernel cache invalidations are backed up; inode %d", inode.number)

    def _entry(self, parent: int, name: bytes, attributes: Attributes) -> pyfuse3.EntryAttributes:
        self._kernel_names.setdefault(parent, set()).add(name)
        return self._attributes(attributes)

    def _attributes(self, a: Attributes) -> pyfuse3.EntryAttributes:
        entry = pyfuse3.EntryAttributes()
        entry.st_ino = a.inode
        entry.generation = a.generation
        entry.entry_timeout = entry.attr_timeout = self.cache_seconds
        entry.st_mode = a.mode
        entry.st_nlink = a.nlink
        entry.st_uid = a.uid
        entry.st_gid = a.gid
        entry.st_rdev = a.rdev
        entry.st_size = a.size
        entry.st_blksize = 1 << 17
        entry.st_blocks = a.blocks
        entry.st_atime_ns = a.atime_ns
        entry.st_mtime_ns = a.mtime_ns
        entry.st_ctime_ns = a.ctime_ns
        return entry

    # ------------------------------------------------------------ metadata

    @_errnos
    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        return self._entry(parent_inode, name, await self.fs.lookup(parent_inode, name))

    @_errnos
    async def forget(self, inode_list: list[tuple[int, int]]) -> None:
        for number, count in inode_list:
            await self.fs.forget(number, count)

    @_errnos
    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        return self._attributes(await self.fs.getattr(inode))

    @_errnos
    async def setattr(
        self,
        inode: int,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: int | None,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        context = _context(ctx)
        if ctx.uid and (fields.update_gid or fields.update_mode):
            groups = tuple(pyfuse3.get_sup_groups(ctx.pid))
            context = Context(ctx.uid, ctx.gid, groups, checked=True)
        attributes = await self.fs.setattr(
            inode,
            context,
            mode=attr.st_mode if fields.update_mode else None,
            uid=attr.st_uid if fields.update_uid else None,
            gid=attr.st_gid if fields.update_gid else None,
            size=attr.st_size if fields.update_size else None,
            atime_ns=attr.st_atime_ns if fields.update_atime else None,
            mtime_ns=attr.st_mtime_ns if fields.update_mtime else None,
        )
        return self._attributes(attributes)

    @_errnos
    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        return await self.fs.readlink(inode)

    @_errnos
    async def mknod(
        self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        attributes = await self.fs.mknod(parent_inode, name, mode, rdev, _context(ctx))
        return self._entry(parent_inode, name, attributes)

    @_errnos
    async def mkdir(
        self, parent_inode: int, name: bytes, mode: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        attributes = await self.fs.mkdir(parent_inode, name, mode, _context(ctx))
        return self._entry(parent_inode, name, attributes)

    @_errnos
    async def symlink(
        self, parent_inode: int, name: bytes, target: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        attributes = await self.fs.symlink(parent_inode, name, target, _context(ctx))
        return self._entry(parent_inode, name, attributes)

    @_errnos
    async def link(
        self, inode: int, new_parent_inode: int, new_name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        attributes = await self.fs.link(inode, new_parent_inode, new_name, _context(ctx))
        return self._entry(new_parent_inode, new_name, attributes)

    @_errnos
    async def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        await self.fs.unlink(parent_inode, name, _context(ctx))

    @_errnos
    async def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        await self.fs.rmdir(parent_inode, name, _context(ctx))

    @_errnos
    async def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: pyfuse3.RequestContext,
    ) -> None:
        await self.fs.rename(
            parent_inode_old, name_old, parent_inode_new, name_new, flags, _context(ctx)
        )

    # --------------------------------------------------------------- files

    @_errnos
    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        opened = await self.fs.open(inode, truncate=bool(flags & os.O_TRUNC))
        fh = self._handle(self._files, FileHandle(inode, _context(ctx)))
        return pyfuse3.FileInfo(fh=fh, keep_cache=self._keep_cache(opened))

    def _handle(self, table: dict[int, Any], handle: Any) -> int:
        self._next_handle += 1
        table[self._next_handle] = handle
        return self._next_handle

    def _keep_cache(self, inode: Inode) -> bool:
        """Keep the kernel's pages only if no lease was lost since they were read."""
        keep = self._kernel_epochs.get(inode.number) == inode.epoch
        self._kernel_epochs[inode.number] = inode.epoch
        return keep

    @_errnos
    async def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: pyfuse3.RequestContext
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        context = _context(ctx)
        attributes = await self.fs.create(parent_inode, name, mode, context)
        self._kernel_epochs[attributes.inode] = 0
        fh = self._handle(self._files, FileHandle(attributes.inode, context))
        return pyfuse3.FileInfo(fh=fh), self._entry(parent_inode, name, attributes)

    @_errnos
    async def read(self, fh: int, off: int, size: int) -> bytes:
        return await self.fs.read(self._files[fh].inode, off, size)

    @_errnos
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        handle = self._files[fh]
        return await self.fs.write(handle.inode, off, buf, handle.context)

    async def flush(self, fh: int) -> None:
        pass  # close-to-open comes from leases: another mount's open makes this one commit

    @_errnos
    async def release(self, fh: int) -> None:
        await self.fs.release(self._files.pop(fh).inode)

    @_errnos
    async def fsync(self, fh: int, datasync: bool) -> None:
        await self.fs.fsync(self._files[fh].inode)

    # --------------------------------------------------------- directories

    @_errnos
    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        await self.fs.getattr(inode)
        return self._handle(self._dirs, DirHandle(inode))

    @_errnos
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        """Cookies: 1 after ".", 2 after "..", n > 2 after the (n-2)th name handed out."""
        handle = self._dirs[fh]
        fs = self.fs
        if start_id < 2:
            directory = await fs.inodes.get(handle.inode)
            dots = [(b".", handle.inode), (b"..", fs.parent_of(directory))][start_id:]
            for cookie, (name, number) in enumerate(dots, start_id + 1):
                if not pyfuse3.readdir_reply(
                    token, name, self._attributes(await fs.getattr(number)), cookie
                ):
                    return
        after = handle.names[start_id - 3] if start_id > 2 else None
        batch: list[tuple[bytes, int]] = []
        async with aclosing(fs.readdir(handle.inode, after)) as entries:
            async for name, entry in entries:
                batch.append((name, entry.inode))
                if len(batch) == READDIR_BATCH and not await self._reply(handle, batch, token):
                    return
        if batch:
            await self._reply(handle, batch, token)

    async def _reply(
        self, handle: DirHandle, batch: list[tuple[bytes, int]], token: pyfuse3.ReaddirToken
    ) -> bool:
        """Hand a batch of entries (attributes loaded together) to the kernel; False when full."""
        found = await self.fs.attributes_of([number for _, number in batch])
        for (name, number), attributes in zip(batch, found, strict=True):
            if attributes is None:
                continue  # removed while listing
            handle.names.append(name)
            cookie = len(handle.names) + 2
            if not pyfuse3.readdir_reply(
                token, name, self._entry(handle.inode, name, attributes), cookie
            ):
                handle.names.pop()
                return False
            self.fs.inodes.held[number].lookups += 1
        batch.clear()
        return True

    async def releasedir(self, fh: int) -> None:
        self._dirs.pop(fh, None)

    @_errnos
    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        await self.fs.fsync()

    # ---------------------------------------------------------------- misc

    @_errnos
    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        stats = pyfuse3.StatvfsData()
        stats.f_bsize = stats.f_frsize = 512
        used = sum(sum(i.accounting.values()) for i in self.fs.inodes.held.values()) // 512
        stats.f_blocks = TOTAL_BLOCKS
        stats.f_bfree = stats.f_bavail = TOTAL_BLOCKS - min(used, TOTAL_BLOCKS)
        stats.f_files = 1 << 40
        stats.f_ffree = stats.f_favail = (1 << 40) - len(self.fs.inodes.held)
        stats.f_namemax = NAME_MAX
        return stats

    @_errnos
    async def setxattr(
        self, inode: int, name: bytes, value: bytes, ctx: pyfuse3.RequestContext
    ) -> None:
        await self.fs.setxattr(inode, name, value, 0)

    @_errnos
    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        return await self.fs.getxattr(inode, name)

    @_errnos
    async def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> list[bytes]:
        return await self.fs.listxattr(inode)

    @_errnos
    async def removexattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        await self.fs.removexattr(inode, name)

    @_errnos
    async def access(self, inode: int, mode: int, ctx: pyfuse3.RequestContext) -> bool:
        await self.fs.access(inode, mode, _context(ctx))
        return True


def mount_options(fsname: str, extra: list[str], as_root: bool) -> set[str]:
    """FUSE options: every user's permissions checked by the kernel when run as root."""
    options = {f"fsname={fsname}", "subtype=objfs", "noatime"}
    if as_root:
        options |= {"allow_other", "default_permissions"}
    options.update(extra)
    return options
