"""The POSIX operations over inode numbers (see iclient.api).

Each change follows one protocol: take the exclusive leases of every inode it
touches (which may wait for other mounts), then the inodes' locks in number
order, then a Gate change section; check again that the names still point
where they did (a lease interrupt may have let them go meanwhile, in which
case the whole change starts over), and only then change heads and trees.
So a commit never sees half an operation, and no change waits for another
mount while holding anything a lease interrupt needs.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, aclosing, asynccontextmanager

import trio

from iclient.api import ROOT_INODE, Context, FsError
from iclient.commit import Committer, Gate
from iclient.files import FileData
from iclient.inode import Attributes, Inode
from iclient.inodes import EXCLUSIVE, Inodes
from iclient.wakeups import Meter
from layout.records import (
    NAME_MAX,
    SYMLINK_MAX,
    XATTR_NAME_MAX,
    XATTR_VALUE_MAX,
    DirEntry,
    FileType,
    InodeHead,
)

log = logging.getLogger(__name__)

XATTR_CREATE, XATTR_REPLACE = 1, 2
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
_DEVICES = (FileType.CHAR_DEVICE, FileType.BLOCK_DEVICE)
_XATTR_NAMESPACES = (b"user.", b"trusted.", b"security.")


class _Retry(Exception):
    """What a change checked moved meanwhile; look it up again."""


class FileSystem:
    def __init__(self, inodes: Inodes, data: FileData, committer: Committer, gate: Gate) -> None:
        self.inodes = inodes
        self.data = data
        self.committer = committer
        self.gate = gate
        self.ops: dict[str, int] = {}
        self.meter = Meter()  # every operation, for iclient.wakeups
        self._loads = trio.CapacityLimiter(32)  # heads loaded at once by attributes_of

    # ------------------------------------------------------------ plumbing

    @asynccontextmanager
    async def _changing(self, *numbers: int) -> AsyncIterator[dict[int, Inode]]:
        """Exclusive leases, locks and a change section over `numbers` (see module doc)."""
        wanted = sorted(set(numbers))
        for _ in range(100):
            held = [await self.inodes.get(n, exclusive=True) for n in wanted]
            async with AsyncExitStack() as stack:
                for inode in held:
                    await stack.enter_async_context(inode.lock)
                await stack.enter_async_context(self.gate.change())
                if all(i.lease == EXCLUSIVE and self.inodes.held.get(i.number) is i for i in held):
                    yield {i.number: i for i in held}
                    return
        raise FsError(errno.EAGAIN, f"leases of {wanted} kept moving")

    async def _retrying(self, attempt: Callable[..., Awaitable[None]], *args: object) -> None:
        """Run `attempt` again while what it looked up moves under it (_Retry)."""
        for _ in range(100):
            try:
                return await attempt(*args)
            except _Retry:
                continue
        raise FsError(errno.EAGAIN, "the names kept changing")

    async def _dir(self, number: int, exclusive: bool = False) -> Inode:
        inode = await self.inodes.get(number, exclusive)
        if not inode.is_dir:
            raise FsError(errno.ENOTDIR)
        return inode

    async def _entry(self, parent: Inode, name: bytes) -> DirEntry:
        _check_name(name)
        assert parent.tree is not None
        entry = await parent.tree.get(name)
        if entry is None:
            raise FsError(errno.ENOENT)
        return entry

    async def _still(self, parent: Inode, name: bytes, entry: DirEntry | None) -> None:
        assert parent.tree is not None
        if await parent.tree.get(name) != entry:
            raise _Retry

    def _count(self, op: str) -> None:
        self.ops[op] = self.ops.get(op, 0) + 1
        self.meter.tick()

    # ---------------------------------------------------------- attributes

    async def lookup(self, parent: int, name: bytes) -> Attributes:
        self._count("lookup")
        entry = await self._entry(await self._dir(parent), name)
        inode = await self.inodes.get(entry.inode)
        inode.lookups += 1
        return await self._attributes(inode)

    async def getattr(self, number: int) -> Attributes:
        self._count("getattr")
        return await self._attributes(await self.inodes.get(number))

    async def attributes_of(self, numbers: list[int]) -> list[Attributes | None]:
        """getattr of many inodes, their heads loaded concurrently (a cold `ls -l`).

        None for an inode gone meanwhile (a name removed while listing).
        """
        found: dict[int, Attributes | None] = {}
        failed: list[BaseException] = []

        async def one(number: int) -> None:
            async with self._loads:
                try:
                    found[number] = await self.getattr(number)
                except FsError as exc:
                    if exc.errno != errno.ENOENT:
                        failed.append(exc)
                    found[number] = None
                except Exception as exc:  # raised below, as itself, not as a group
                    failed.append(exc)

        async with trio.open_nursery() as nursery:
            for number in dict.fromkeys(numbers):
                nursery.start_soon(one, number)
        if failed:
            raise failed[0]
        return [found[number] for number in numbers]

    async def _attributes(self, inode: Inode) -> Attributes:
        if inode.is_dir and inode.subdirs is None:
            assert inode.tree is not None
            count = 0
            async for _, entry in inode.tree.items():
                count += entry.type is FileType.DIRECTORY
            inode.subdirs = count
        return inode.attributes()

    async def setattr(
        self,
        number: int,
        ctx: Context,
        *,
        mode: int | None = None,
        uid: int | None = None,
        gid: int | None = None,
        size: int | None = None,
        atime_ns: int | None = None,
        mtime_ns: int | None = None,
    ) -> Attributes:
        self._count("setattr")
        async with self._changing(number) as held:
            inode = held[number]
            head = inode.head
            owner = ctx.root or ctx.checked or ctx.uid == head.uid
            now = time.time_ns()
            changes: dict = {}
            if mode is not None:
                if not owner:
                    raise FsError(errno.EPERM, "chmod of a file you do not own")
                mode &= 0o7777
                if not ctx.root and not ctx.in_group(head.gid) and not inode.is_dir:
                    mode &= ~stat.S_ISGID
                changes["mode"] = mode
            if uid is not None or gid is not None:
                changes.update(self._chown(inode, ctx, uid, gid, changes.get("mode", head.mode)))
            if size is not None:
                if inode.is_dir:
                    raise FsError(errno.EISDIR)
                if not inode.is_file:
                    raise FsError(errno.EINVAL)
                await self.data.truncate(inode, size)
                changes.update(size=size, mtime_ns=now, mode=_killed_privileges(inode, ctx))
            if atime_ns is not None or mtime_ns is not None:
                changes.update(_times(atime_ns, mtime_ns))
            changes["ctime_ns"] = now
            inode.change(**changes)
            return await self._attributes(inode)

    def _chown(
        self, inode: Inode, ctx: Context, uid: int | None, gid: int | None, mode: int
    ) -> dict[str, int]:
        head = inode.head
        if not ctx.root and not ctx.checked:
            if uid is not None and uid != head.uid:
                raise FsError(errno.EPERM, "only root gives a file away")
            if ctx.uid != head.uid or (gid is not None and not ctx.in_group(gid)):
                raise FsError(errno.EPERM, "chown to a group you are not in")
        changes = {"uid": head.uid if uid is None else uid, "gid": head.gid if gid is None else gid}
        if not inode.is_dir and (mode & (stat.S_ISUID | stat.S_ISGID)):
            kill = stat.S_ISUID | (stat.S_ISGID if mode & stat.S_IXGRP else 0)
            changes["mode"] = mode & ~kill
        return changes

    # ------------------------------------------------------------ creating

    async def mknod(
        self, parent: int, name: bytes, mode: int, rdev: int, ctx: Context
    ) -> Attributes:
        kind = FileType(stat.S_IFMT(mode) >> 12) if stat.S_IFMT(mode) else FileType.REGULAR
        if kind in _DEVICES and not ctx.root:
            raise FsError(errno.EPERM, "only root makes devices")
        if kind is FileType.DIRECTORY or kind is FileType.SYMLINK:
            raise FsError(errno.EINVAL)
        return await self._make(parent, name, kind, mode, ctx, rdev=rdev if kind in _DEVICES else 0)

    async def create(self, parent: int, name: bytes, mode: int, ctx: Context) -> Attributes:
        attributes = await self._make(parent, name, FileType.REGULAR, mode, ctx)
        await self.open(attributes.inode)
        return attributes

    async def mkdir(self, parent: int, name: bytes, mode: int, ctx: Context) -> Attributes:
        return await self._make(parent, name, FileType.DIRECTORY, mode, ctx)

    async def symlink(self, parent: int, name: bytes, target: bytes, ctx: Context) -> Attributes:
        if len(target) > SYMLINK_MAX:
            raise FsError(errno.ENAMETOOLONG)
        if not target or b"\0" in target:
            raise FsError(errno.EINVAL if target else errno.ENOENT)
        return await self._make(parent, name, FileType.SYMLINK, 0o777, ctx, symlink=target)

    async def _make(
        self,
        parent: int,
        name: bytes,
        kind: FileType,
        mode: int,
        ctx: Context,
        *,
        rdev: int = 0,
        symlink: bytes | None = None,
    ) -> Attributes:
        self._count(f"make_{kind.name.lower()}")
        _check_name(name)
        await self._dir(parent)
        number = await self.inodes.new_number()
        async with self._changing(parent) as held:
            directory = held[parent]
            assert directory.tree is not None
            if directory.unlinked:
                raise FsError(errno.ENOENT, "the directory was removed")
            if await directory.tree.get(name) is not None:
                raise FsError(errno.EEXIST)
            mode &= 0o7777
            gid = ctx.gid
            if directory.head.mode & stat.S_ISGID:
                gid = directory.head.gid
                if kind is FileType.DIRECTORY:
                    mode |= stat.S_ISGID
            now = time.time_ns()
            head = InodeHead(
                number, kind, mode, ctx.uid, gid, now, now, now, now,
                size=len(symlink) if symlink else 0, rdev=rdev,
                links=((parent, name),), symlink=symlink,
            )  # fmt: skip
            inode = self.inodes.add_new(head)
            if kind is FileType.DIRECTORY:
                inode.subdirs = 0
                if directory.subdirs is not None:
                    directory.subdirs += 1
            await directory.tree.put(name, DirEntry(number, kind))
            directory.change(mtime_ns=now, ctime_ns=now)
            inode.lookups += 1
            return inode.attributes()

    async def link(self, number: int, parent: int, name: bytes, ctx: Context) -> Attributes:
        self._count("link")
        _check_name(name)
        await self._dir(parent)
        async with self._changing(number, parent) as held:
            inode, directory = held[number], held[parent]
            assert directory.tree is not None
            if inode.is_dir:
                raise FsError(errno.EPERM, "hard link to a directory")
            if directory.unlinked:
                raise FsError(errno.ENOENT)
            if await directory.tree.get(name) is not None:
                raise FsError(errno.EEXIST)
            await directory.tree.put(name, DirEntry(number, inode.type))
            now = time.time_ns()
            directory.change(mtime_ns=now, ctime_ns=now)
            inode.change(links=(*inode.head.links, (parent, name)), ctime_ns=now)
            inode.lookups += 1
            return await self._attributes(inode)

    # ------------------------------------------------------------ removing

    async def unlink(self, parent: int, name: bytes, ctx: Context) -> None:
        self._count("unlink")
        await self._retrying(self._remove, parent, name, ctx, False)

    async def rmdir(self, parent: int, name: bytes, ctx: Context) -> None:
        self._count("rmdir")
        if name == b".":
            raise FsError(errno.EINVAL)
        if name == b"..":
            raise FsError(errno.ENOTEMPTY)
        await self._retrying(self._remove, parent, name, ctx, True)

    async def _remove(self, parent: int, name: bytes, ctx: Context, directory: bool) -> None:
        entry = await self._entry(await self._dir(parent), name)
        if directory != (entry.type is FileType.DIRECTORY):
            raise FsError(errno.ENOTDIR if directory else errno.EISDIR)
        async with self._changing(parent, entry.inode) as held:
            dir_inode, inode = held[parent], held[entry.inode]
            await self._still(dir_inode, name, entry)
            _check_sticky(dir_inode, inode, ctx)
            if directory:
                assert inode.tree is not None
                if await inode.tree.count():
                    raise FsError(errno.ENOTEMPTY)
            assert dir_inode.tree is not None
            await dir_inode.tree.delete(name)
            now = time.time_ns()
            dir_inode.change(mtime_ns=now, ctime_ns=now)
            if directory and dir_inode.subdirs is not None:
                dir_inode.subdirs -= 1
            _unlink(inode, parent, name, now)
            self._maybe_delete(inode)

    def _maybe_delete(self, inode: Inode) -> None:
        """Drop an inode nothing links to, once nothing here uses it either.

        Until then the committer deletes it at imgr all the same (an orphan
        while open there), so that a crash of this mount cannot leave it in
        the inode table with no name.
        """
        if inode.head.links or inode.number == ROOT_INODE:
            return
        if inode.lookups or inode.opens:
            self.inodes.unlinked.add(inode.number)
            return
        if not inode.fresh and not inode.delete_sent:
            self.inodes.deleted.add(inode.number)
        self.inodes.forget_deleted(inode.number)

    # ------------------------------------------------------------ renaming

    async def rename(
        self, parent: int, name: bytes, new_parent: int, new_name: bytes, flags: int, ctx: Context
    ) -> None:
        self._count("rename")
        if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) or flags == (
            RENAME_NOREPLACE | RENAME_EXCHANGE
        ):
            raise FsError(errno.EINVAL)
        _check_name(new_name)
        await self._retrying(self._rename, parent, name, new_parent, new_name, flags, ctx)

    async def _rename(
        self, parent: int, name: bytes, new_parent: int, new_name: bytes, flags: int, ctx: Context
    ) -> None:
        source = await self._entry(await self._dir(parent), name)
        target_dir = await self._dir(new_parent)
        assert target_dir.tree is not None
        target = await target_dir.tree.get(new_name)
        _check_rename(source, target, flags)
        if target is not None and target.inode == source.inode:
            return  # two links of one file: POSIX says do nothing
        if source.type is FileType.DIRECTORY or (target and target.type is FileType.DIRECTORY):
            await self._check_not_inside(source, target, new_parent, parent)
        numbers = [parent, new_parent, source.inode] + ([target.inode] if target else [])
        async with self._changing(*numbers) as held:
            src_dir, dst_dir = held[parent], held[new_parent]
            await self._still(src_dir, name, source)
            await self._still(dst_dir, new_name, target)
            moved = held[source.inode]
            replaced = held[target.inode] if target else None
            _check_sticky(src_dir, moved, ctx)
            if replaced is not None:
                _check_sticky(dst_dir, replaced, ctx)
                if not flags & RENAME_EXCHANGE and replaced.is_dir:
                    assert replaced.tree is not None
                    if await replaced.tree.count():
                        raise FsError(errno.ENOTEMPTY)
            now = time.time_ns()
            if flags & RENAME_EXCHANGE:
                assert replaced is not None and target is not None
                await self._exchange(src_dir, name, moved, dst_dir, new_name, replaced, now)
            else:
                await self._move(src_dir, name, moved, dst_dir, new_name, replaced, now)
            for directory in {src_dir, dst_dir}:
                directory.change(mtime_ns=now, ctime_ns=now)

    async def _move(
        self, src_dir: Inode, name: bytes, moved: Inode, dst_dir: Inode, new_name: bytes,
        replaced: Inode | None, now: int,
    ) -> None:  # fmt: skip
        assert src_dir.tree is not None and dst_dir.tree is not None
        await src_dir.tree.delete(name)
        await dst_dir.tree.put(new_name, DirEntry(moved.number, moved.type))
        _relink(moved, (src_dir.number, name), (dst_dir.number, new_name), now)
        if moved.is_dir:
            _adjust_subdirs(src_dir, -1)
            _adjust_subdirs(dst_dir, +1)
        if replaced is not None:
            if replaced.is_dir:
                _adjust_subdirs(dst_dir, -1)
            _unlink(replaced, dst_dir.number, new_name, now)
            self._maybe_delete(replaced)

    async def _exchange(
        self, src_dir: Inode, name: bytes, a: Inode, dst_dir: Inode, new_name: bytes,
        b: Inode, now: int,
    ) -> None:  # fmt: skip
        assert src_dir.tree is not None and dst_dir.tree is not None
        await src_dir.tree.put(name, DirEntry(b.number, b.type))
        await dst_dir.tree.put(new_name, DirEntry(a.number, a.type))
        _relink(a, (src_dir.number, name), (dst_dir.number, new_name), now)
        _relink(b, (dst_dir.number, new_name), (src_dir.number, name), now)
        moved = int(a.is_dir) - int(b.is_dir)
        _adjust_subdirs(src_dir, -moved)
        _adjust_subdirs(dst_dir, moved)

    async def _check_not_inside(
        self, source: DirEntry, target: DirEntry | None, new_parent: int, parent: int
    ) -> None:
        """EINVAL for a directory moved (or exchanged) into its own subtree."""
        moving = {source.inode} | ({target.inode} if target else set())
        for start, own in ((new_parent, source.inode), (parent, target.inode if target else 0)):
            number = start
            while number != ROOT_INODE:
                if number in moving and (number == own or start == new_parent):
                    raise FsError(errno.EINVAL, "a directory moved under itself")
                links = (await self.inodes.get(number)).head.links
                if not links:
                    break
                number = links[0][0]

    # ------------------------------------------------------------- reading

    async def readlink(self, number: int) -> bytes:
        self._count("readlink")
        inode = await self.inodes.get(number)
        if inode.head.symlink is None:
            raise FsError(errno.EINVAL)
        return inode.head.symlink

    async def readdir(
        self, number: int, after: bytes | None
    ) -> AsyncIterator[tuple[bytes, DirEntry]]:
        """Entries in name order, from the first one after `after` (None: the first)."""
        self._count("readdir")
        directory = await self._dir(number)
        assert directory.tree is not None
        async with aclosing(directory.tree.items(after)) as entries:
            async for name, entry in entries:
                if name != after:
                    yield name, entry

    def parent_of(self, inode: Inode) -> int:
        return inode.head.links[0][0] if inode.head.links else ROOT_INODE

    # --------------------------------------------------------------- files

    async def open(self, number: int, truncate: bool = False) -> Inode:
        self._count("open")
        inode = await self.inodes.get(number, exclusive=truncate)
        if inode.is_dir and truncate:
            raise FsError(errno.EISDIR)
        inode.opens += 1
        if not inode.fresh and not inode.announced_opens:
            inode.announced_opens = 1
            await self.inodes.imgr.adjust_open(number, 1)
        if truncate and inode.head.size:
            await self.setattr(number, Context(), size=0)
        return inode

    async def release(self, number: int) -> None:
        self._count("release")
        inode = self.inodes.held.get(number)
        if inode is None:
            return
        inode.opens -= 1
        if inode.opens:
            return
        if not inode.head.links:
            async with self.gate.change():
                if inode.delete_sent:
                    inode.discard_changes()  # no later commit may store it again
                self._maybe_delete(inode)
        if inode.announced_opens:
            if inode.delete_sent:
                await self.committer.settled()  # nor one under way: imgr deletes it now
            inode.announced_opens = 0
            await self.inodes.imgr.adjust_open(number, -1)

    async def read(self, number: int, offset: int, length: int) -> bytes:
        self._count("read")
        inode = await self.inodes.get(number)
        if inode.is_dir:
            raise FsError(errno.EISDIR)
        return await self.data.read(inode, offset, length)

    async def write(self, number: int, offset: int, data: bytes, ctx: Context) -> int:
        self._count("write")
        await self.data.segments.reserve(len(data))
        async with self._changing(number) as held:
            inode = held[number]
            if not inode.is_file:
                raise FsError(errno.EISDIR if inode.is_dir else errno.EINVAL)
            await self.data.write(inode, offset, data)
            now = time.time_ns()
            size = max(inode.head.size, offset + len(data))
            inode.change(size=size, mtime_ns=now, ctime_ns=now, mode=_killed_privileges(inode, ctx))
        return len(data)

    async def fsync(self, number: int | None = None) -> None:
        """Durable: everything changed so far is stored and in a checkpoint."""
        self._count("fsync")
        await self.committer.commit()
        await self.inodes.imgr.flush()

    async def let_go(self, number: int, to: str) -> None:
        """imgr wants `number`'s lease down to `to` for another mount: commit, then let go.

        Returning is the answer. An inode open here is first counted open at
        imgr, so the other mount cannot delete it from under this one.
        """
        inode = self.inodes.held.get(number)
        if inode is not None and inode.opens and not inode.announced_opens:
            inode.announced_opens = 1
            await self.inodes.imgr.adjust_open(number, 1)
        await self.committer.commit(let_go=(number, to))

    async def forget(self, number: int, count: int) -> None:
        inode = self.inodes.held.get(number)
        if inode is not None:
            inode.lookups = max(0, inode.lookups - count)
            if not inode.head.links:
                async with self.gate.change():
                    self._maybe_delete(inode)

    # --------------------------------------------------------------- xattrs

    async def getxattr(self, number: int, name: bytes) -> bytes:
        self._count("getxattr")
        value = (await self.inodes.get(number)).head.xattrs.get(name)
        if value is None:
            raise FsError(errno.ENODATA)
        return value

    async def listxattr(self, number: int) -> list[bytes]:
        self._count("listxattr")
        return list((await self.inodes.get(number)).head.xattrs)

    async def setxattr(self, number: int, name: bytes, value: bytes, flags: int) -> None:
        self._count("setxattr")
        _check_xattr_name(name)
        if len(value) > XATTR_VALUE_MAX:
            raise FsError(errno.E2BIG)
        async with self._changing(number) as held:
            inode = held[number]
            xattrs = inode.head.xattrs
            if flags & XATTR_CREATE and name in xattrs:
                raise FsError(errno.EEXIST)
            if flags & XATTR_REPLACE and name not in xattrs:
                raise FsError(errno.ENODATA)
            changed = dict(xattrs)
            changed[name] = value
            inode.change(xattrs=dict(sorted(changed.items())), ctime_ns=time.time_ns())

    async def removexattr(self, number: int, name: bytes) -> None:
        self._count("removexattr")
        _check_xattr_name(name)
        async with self._changing(number) as held:
            inode = held[number]
            if name not in inode.head.xattrs:
                raise FsError(errno.ENODATA)
            changed = {k: v for k, v in inode.head.xattrs.items() if k != name}
            inode.change(xattrs=changed, ctime_ns=time.time_ns())

    # ---------------------------------------------------------------- misc

    async def access(self, number: int, mode: int, ctx: Context) -> None:
        self._count("access")
        head = (await self.inodes.get(number)).head
        if ctx.root:
            if mode & os.X_OK and head.type is not FileType.DIRECTORY and not head.mode & 0o111:
                raise FsError(errno.EACCES)
            return
        if ctx.uid == head.uid:
            granted = head.mode >> 6
        elif ctx.in_group(head.gid):
            granted = head.mode >> 3
        else:
            granted = head.mode
        if mode & 7 & ~granted:
            raise FsError(errno.EACCES)


# ---------------------------------------------------------------- helpers


def _check_name(name: bytes) -> None:
    if len(name) > NAME_MAX:
        raise FsError(errno.ENAMETOOLONG)
    if not name or b"/" in name or name in (b".", b".."):
        raise FsError(errno.EINVAL, f"bad name {name!r:.40}")


def _check_xattr_name(name: bytes) -> None:
    if not name or len(name) > XATTR_NAME_MAX:
        raise FsError(errno.ERANGE)
    if not name.startswith(_XATTR_NAMESPACES):
        raise FsError(errno.EOPNOTSUPP, "only user., trusted. and security. attributes")


def _killed_privileges(inode: Inode, ctx: Context) -> int:
    """The mode after a write or truncate by `ctx`: an unprivileged one drops setuid/setgid."""
    mode = inode.head.mode
    if ctx.root:
        return mode
    kill = stat.S_ISUID | (stat.S_ISGID if mode & stat.S_IXGRP else 0)
    return mode & ~kill


def _check_sticky(directory: Inode, inode: Inode, ctx: Context) -> None:
    if directory.head.mode & stat.S_ISVTX and not ctx.root:
        if ctx.uid not in (directory.head.uid, inode.head.uid):
            raise FsError(errno.EPERM, "sticky directory")


def _check_rename(source: DirEntry, target: DirEntry | None, flags: int) -> None:
    if flags & RENAME_NOREPLACE and target is not None:
        raise FsError(errno.EEXIST)
    if flags & RENAME_EXCHANGE:
        if target is None:
            raise FsError(errno.ENOENT)
        return
    if target is None or target.inode == source.inode:
        return
    source_dir = source.type is FileType.DIRECTORY
    target_dir = target.type is FileType.DIRECTORY
    if source_dir and not target_dir:
        raise FsError(errno.ENOTDIR)
    if target_dir and not source_dir:
        raise FsError(errno.EISDIR)


def _times(atime_ns: int | None, mtime_ns: int | None) -> dict[str, int]:
    changes = {}
    if atime_ns is not None:
        changes["atime_ns"] = atime_ns
    if mtime_ns is not None:
        changes["mtime_ns"] = mtime_ns
    return changes


def _unlink(inode: Inode, parent: int, name: bytes, now: int) -> None:
    links = tuple(link for link in inode.head.links if link != (parent, name))
    inode.change(links=links, ctime_ns=now)


def _relink(inode: Inode, old: tuple[int, bytes], new: tuple[int, bytes], now: int) -> None:
    links = tuple(new if link == old else link for link in inode.head.links)
    inode.change(links=links, ctime_ns=now)


def _adjust_subdirs(directory: Inode, delta: int) -> None:
    if directory.subdirs is not None:
        directory.subdirs += delta
