"""The watched directory's image in the volume: entries put, moved and removed by path.

Everything goes through iclient's filesystem library. A file, symlink or
node is made under a temporary name beside its final one and renamed over
it once complete, so a reader of the final name sees the old content or the
new, never a part. The temporary names are listed in the watch state until
the volume holds them no more durably (`durable`), so a restart after a
crash removes what an interrupted upload left.
"""

from __future__ import annotations

import errno
import logging
import secrets
import stat
from collections.abc import Awaitable, Callable

from iclient.api import ROOT_CONTEXT, ROOT_INODE, FsError
from iclient.fs import FileSystem
from objfs.copyin import Metadata, copy_data, set_metadata
from objfs.watch.events import join
from objfs.watch.state import WatchState, under

log = logging.getLogger(__name__)

TEMP_PREFIX = b".objfs-watch~"


def split(path: bytes) -> tuple[bytes, bytes]:
    parent, _, name = path.rpartition(b"/")
    return parent, name


class Target:
    def __init__(self, fs: FileSystem, base: bytes, state: WatchState) -> None:
        self.fs, self.base, self.state = fs, base, state
        self.dirs: dict[bytes, int] = {}  # watched-relative directory -> its volume inode
        self.renamed_temps: list[bytes] = []  # gone from the volume once durable

    async def start(self) -> None:
        """Find (or make) the base directory; remove what interrupted uploads left."""
        number = ROOT_INODE
        for name in [part for part in self.base.split(b"/") if part]:
            number = await self._subdir(number, name)
        self.dirs[b""] = number
        for temp in self.state.temps():
            await self._remove_temp(temp)
            self.state.drop_temp(temp)

    async def _remove_temp(self, temp: bytes) -> None:
        number = self.dirs[b""]
        *directories, name = temp.split(b"/")
        try:
            for part in directories:
                found = await self.fs.lookup(number, part)
                await self.fs.forget(found.inode, 1)
                number = found.inode
            await self.fs.unlink(number, name, ROOT_CONTEXT)
            log.info("removed %r, left by an interrupted upload", temp)
        except FsError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise

    async def durable(self) -> None:
        """Everything done so far is stored and in a checkpoint."""
        await self.fs.fsync()
        for temp in self.renamed_temps:
            self.state.drop_temp(temp)
        self.renamed_temps = []

    async def dir(self, path: bytes) -> int:
        """The volume directory at `path`, made (with its parents) if missing."""
        number = self.dirs.get(path)
        if number is None:
            parent, name = split(path)
            number = await self._subdir(await self.dir(parent), name)
            self.dirs[path] = number
        return number

    async def _subdir(self, parent: int, name: bytes) -> int:
        try:
            found = await self.fs.lookup(parent, name)
            await self.fs.forget(found.inode, 1)
            if stat.S_ISDIR(found.mode):
                return found.inode
            await self.fs.unlink(parent, name, ROOT_CONTEXT)  # a file where a directory is now
        except FsError as exc:
            if exc.errno != errno.ENOENT:
                raise
        try:
            made = await self.fs.mkdir(parent, name, 0o755, ROOT_CONTEXT)
        except FsError as exc:
            if exc.errno != errno.EEXIST:
                raise
            made = await self.fs.lookup(parent, name)  # another sync made it meanwhile
        await self.fs.forget(made.inode, 1)
        return made.inode

    async def put_dir(self, path: bytes, meta: Metadata) -> None:
        await set_metadata(self.fs, await self.dir(path), meta)

    async def put_file(
        self, path: bytes, fd: int, size: int, meta: Metadata, seen: Callable[[bytes], None]
    ) -> None:
        """The open local file's content and `meta` at `path`, replacing what was there."""
        fs = self.fs

        async def make(parent: int, temp: bytes) -> int:
            number = (await fs.create(parent, temp, meta.mode, ROOT_CONTEXT)).inode
            try:
                await copy_data(fs, number, fd, size, seen)
            finally:
                await fs.release(number)
            return number

        await self._put(path, make, meta)

    async def put_bytes(self, path: bytes, data: bytes, meta: Metadata) -> None:
        """A small file, whole in memory, at `path`, replacing what was there."""
        fs = self.fs

        async def make(parent: int, temp: bytes) -> int:
            number = (await fs.create(parent, temp, meta.mode, ROOT_CONTEXT)).inode
            try:
                if data:
                    await fs.write(number, 0, data, ROOT_CONTEXT)
            finally:
                await fs.release(number)
            return number

        await self._put(path, make, meta)

    async def put_symlink(self, path: bytes, target: bytes, meta: Metadata) -> None:
        async def make(parent: int, temp: bytes) -> int:
            return (await self.fs.symlink(parent, temp, target, ROOT_CONTEXT)).inode

        await self._put(path, make, meta)

    async def put_node(self, path: bytes, mode: int, rdev: int, meta: Metadata) -> None:
        async def make(parent: int, temp: bytes) -> int:
            return (await self.fs.mknod(parent, temp, mode, rdev, ROOT_CONTEXT)).inode

        await self._put(path, make, meta)

    async def _put(
        self, path: bytes, make: Callable[[int, bytes], Awaitable[int]], meta: Metadata
    ) -> None:
        directory, name = split(path)
        parent = await self.dir(directory)
        temp = TEMP_PREFIX + name[:200] + b"~" + secrets.token_hex(4).encode()
        self.state.add_temp(join(directory, temp))
        number = await make(parent, temp)
        try:
            await set_metadata(self.fs, number, meta)
        finally:
            await self.fs.forget(number, 1)
        await self._rename_over(parent, temp, parent, name, join(directory, name))
        self.renamed_temps.append(join(directory, temp))

    async def _rename_over(
        self, parent: int, name: bytes, new_parent: int, new_name: bytes, new_path: bytes
    ) -> None:
        """Rename, replacing whatever `new_path` is (a directory with all it holds)."""
        try:
            await self.fs.rename(parent, name, new_parent, new_name, 0, ROOT_CONTEXT)
        except FsError as exc:
            if exc.errno not in (errno.EISDIR, errno.ENOTDIR, errno.ENOTEMPTY, errno.EEXIST):
                raise
            await self.remove(new_path)
            await self.fs.rename(parent, name, new_parent, new_name, 0, ROOT_CONTEXT)

    async def set_metadata(self, path: bytes, meta: Metadata) -> None:
        directory, name = split(path)
        found = await self.fs.lookup(await self.dir(directory), name)
        try:
            await set_metadata(self.fs, found.inode, meta)
        finally:
            await self.fs.forget(found.inode, 1)

    async def remove(self, path: bytes) -> None:
        """`path` and, for a directory, everything in it; nothing if it is not there."""
        directory, name = split(path)
        parent = await self.dir(directory)
        try:
            found = await self.fs.lookup(parent, name)
        except FsError as exc:
            if exc.errno == errno.ENOENT:
                return
            raise
        await self.fs.forget(found.inode, 1)
        if stat.S_ISDIR(found.mode):
            self.dirs[path] = found.inode
            async for child, _ in self.fs.readdir(found.inode, None):
                await self.remove(join(path, child))
            await self.fs.rmdir(parent, name, ROOT_CONTEXT)
            self._forget_dirs(path)
        else:
            await self.fs.unlink(parent, name, ROOT_CONTEXT)

    async def move(self, old: bytes, new: bytes) -> bool:
        """Rename `old` to `new` in the volume; False if `old` is not there."""
        (old_dir, old_name), (new_dir, new_name) = split(old), split(new)
        parent, new_parent = await self.dir(old_dir), await self.dir(new_dir)
        try:
            await self._rename_over(parent, old_name, new_parent, new_name, new)
        except FsError as exc:
            if exc.errno == errno.ENOENT:
                return False
            raise
        low, high = under(old)
        for directory in [d for d in self.dirs if d == old or low <= d < high]:
            self.dirs[new + directory[len(old) :]] = self.dirs.pop(directory)
        return True

    def _forget_dirs(self, path: bytes) -> None:
        low, high = under(path)
        for directory in [d for d in self.dirs if d == path or low <= d < high]:
            del self.dirs[directory]
