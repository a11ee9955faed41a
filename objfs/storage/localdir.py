"""file://DIR — a container that is a local directory, durable like a real store.

Object names are arbitrary strings, so they are escaped into file names:
"%" and "/" are percent-encoded (an object "a" and an object "a/b" can both
exist) and a leading "." is too (the namespace stays clear of our own
".objfs-tmp" directory). Escaped names longer than one path component are cut
into pieces stored as nested directories whose names end in "%+", a sequence
no escaped name contains.

A put writes a temporary file, fsyncs it, and moves it into place with
rename (replace) or link (create only if absent, which is atomic: exactly one
racing writer wins), then fsyncs the directory: an acknowledged put survives
a crash.
"""

from __future__ import annotations

import errno
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar
from urllib.parse import quote, unquote

import trio

from objfs.durable import fsync_dir
from objfs.storage.api import (
    CHUNK_SIZE,
    ListPage,
    ObjectInfo,
    ObjectReader,
    ObjectStore,
    Payload,
    as_payload,
    check_name,
    check_range,
    run_blocking,
)
from objfs.storage.errors import AlreadyExists, AuthError, NotFound, StorageError

log = logging.getLogger(__name__)

T = TypeVar("T")
TMP_DIR = ".objfs-tmp"
DIR_SUFFIX = "%+"
PIECE_BYTES = 200


def encode_name(name: str) -> list[str]:
    """The path components that hold object `name`."""
    escaped = quote(name, safe=" !\"#$&'()*+,-.:;<=>?@[\\]^_`{|}~")
    if escaped.startswith("."):
        escaped = "%2E" + escaped[1:]
    pieces = []
    while len(escaped.encode()) > PIECE_BYTES + 40:
        cut = PIECE_BYTES
        while "%" in escaped[cut - 2 : cut]:  # never split a %XX escape
            cut -= 1
        pieces.append(escaped[:cut] + DIR_SUFFIX)
        escaped = escaped[cut:]
    return [*pieces, escaped]


def decode_name(components: list[str]) -> str:
    return unquote("".join(c.removesuffix(DIR_SUFFIX) for c in components))


class LocalDirStore(ObjectStore):
    def __init__(self, root: str | os.PathLike[str], max_threads: int = 16) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self.url = f"file://{self.root}"
        self._limiter = trio.CapacityLimiter(max_threads)

    async def _run(self, name: str | None, fn: Callable[..., T], *args: object) -> T:
        try:
            return await run_blocking(self._limiter, fn, *args)
        except OSError as exc:
            raise self._translate(exc, name) from exc

    def _translate(self, exc: OSError, name: str | None) -> StorageError:
        if exc.errno == errno.ENOENT:
            if not os.path.isdir(self.root):
                return NotFound("container does not exist", self.url)
            return NotFound("object does not exist", name)
        if exc.errno == errno.EEXIST:
            return AlreadyExists("object already exists", name)
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return AuthError(f"permission denied ({exc.strerror})", name)
        return StorageError(f"{exc.strerror} (errno {exc.errno})", name)

    def _path(self, name: str) -> str:
        return os.path.join(self.root, *encode_name(name))

    async def ensure_container(self) -> None:
        await self._run(None, os.makedirs, os.path.join(self.root, TMP_DIR), 0o700, True)

    async def put(self, name: str, data: bytes | Payload, *, if_absent: bool = False) -> None:
        check_name(name)
        await self._run(name, self._put_sync, name, as_payload(data), if_absent)

    def _put_sync(self, name: str, payload: Payload, if_absent: bool) -> None:
        final = self._path(name)
        tmp = os.path.join(self.root, TMP_DIR, uuid.uuid4().hex)
        if not os.path.isdir(self.root):
            raise FileNotFoundError(errno.ENOENT, "no container")
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        try:
            with open(tmp, "wb") as f:
                for chunk in payload.chunks():
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            os.makedirs(os.path.dirname(final), exist_ok=True)
            if if_absent:
                os.link(tmp, final)
            else:
                os.replace(tmp, final)
        finally:
            _unlink_quietly(tmp)
        fsync_dir(os.path.dirname(final))

    async def open(self, name: str, offset: int = 0, length: int | None = None) -> ObjectReader:
        check_name(name)
        check_range(offset, length)
        f = await self._run(name, open, self._path(name), "rb")
        try:
            size = os.fstat(f.fileno()).st_size
            await self._run(name, f.seek, offset)
        except BaseException:
            f.close()
            raise
        end = size if length is None else min(size, offset + length)
        return _FileReader(self, name, f, max(0, end - offset))

    async def head(self, name: str) -> ObjectInfo:
        check_name(name)
        st = await self._run(name, os.stat, self._path(name))
        return ObjectInfo(name, st.st_size, f"{st.st_mtime_ns:x}-{st.st_size:x}")

    async def delete(self, name: str) -> None:
        check_name(name)
        await self._run(name, self._delete_sync, self._path(name))

    def _delete_sync(self, path: str) -> None:
        os.unlink(path)
        parent = os.path.dirname(path)
        while parent != self.root:  # drop the directories of a long name once empty
            try:
                os.rmdir(parent)
            except OSError:
                break
            parent = os.path.dirname(parent)
        fsync_dir(parent)

    async def list_page(
        self, prefix: str = "", start_after: str | None = None, limit: int = 1000
    ) -> ListPage:
        entries = await self._run(None, self._scan, prefix)
        after = (start_after or "").encode()
        items = [
            ObjectInfo(name, st.st_size, f"{st.st_mtime_ns:x}-{st.st_size:x}", st.st_mtime)
            for key, name, st in entries
            if start_after is None or key > after
        ][:limit]
        return ListPage(items, items[-1].name if len(items) == limit else None)

    def _scan(self, prefix: str) -> list[tuple[bytes, str, os.stat_result]]:
        if not os.path.isdir(self.root):
            raise FileNotFoundError(errno.ENOENT, "no container")
        found = []
        for components, st in _walk(self.root, []):
            name = decode_name(components)
            if name.startswith(prefix):
                found.append((name.encode(), name, st))
        found.sort(key=lambda entry: entry[0])
        return found


def _walk(directory: str, components: list[str]) -> Iterator[tuple[list[str], os.stat_result]]:
    with os.scandir(directory) as it:
        for entry in it:
            if entry.name == TMP_DIR and not components:
                continue
            try:
                if entry.name.endswith(DIR_SUFFIX):
                    yield from _walk(entry.path, [*components, entry.name])
                else:
                    yield [*components, entry.name], entry.stat()
            except FileNotFoundError:
                continue  # deleted while listed: a listing is not a snapshot


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class _FileReader(ObjectReader):
    def __init__(self, store: LocalDirStore, name: str, f: object, remaining: int) -> None:
        self._store, self._name, self._f, self._remaining = store, name, f, remaining

    async def receive_some(self) -> bytes:
        if self._remaining <= 0:
            return b""
        want = min(CHUNK_SIZE, self._remaining)
        chunk = await self._store._run(self._name, self._f.read, want)
        if not chunk:
            raise StorageError("object shrank while being read", self._name)
        self._remaining -= len(chunk)
        return chunk

    async def aclose(self) -> None:
        self._f.close()
