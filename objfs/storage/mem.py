"""mem://NAME — objects in this process's memory, for fast unit tests of logic.

Stores opened with the same NAME share one container, so a test can play two
clients against one store.
"""

from __future__ import annotations

import itertools

from sortedcontainers import SortedDict

from objfs.storage.api import (
    ListPage,
    ObjectInfo,
    ObjectReader,
    ObjectStore,
    Payload,
    as_payload,
    check_name,
    check_range,
)
from objfs.storage.errors import AlreadyExists, NotFound

# Keys are UTF-8 bytes so iteration order is the byte order every backend lists in.
_containers: dict[str, SortedDict] = {}
_etags = itertools.count(1)


class MemStore(ObjectStore):
    def __init__(self, name: str) -> None:
        self.container = name
        self.url = f"mem://{name}"

    async def ensure_container(self) -> None:
        _containers.setdefault(self.container, SortedDict())

    def _objects(self) -> SortedDict:
        try:
            return _containers[self.container]
        except KeyError:
            raise NotFound("container does not exist", self.url) from None

    async def put(self, name: str, data: bytes | Payload, *, if_absent: bool = False) -> None:
        check_name(name)
        objects = self._objects()
        body = b"".join(as_payload(data).chunks())
        key = name.encode()
        if if_absent and key in objects:
            raise AlreadyExists("object already exists", name)
        objects[key] = (body, f"m{next(_etags)}")

    async def open(self, name: str, offset: int = 0, length: int | None = None) -> ObjectReader:
        check_name(name)
        check_range(offset, length)
        body, _ = self._lookup(name)
        end = len(body) if length is None else offset + length
        return _MemReader(body[offset:end])

    async def head(self, name: str) -> ObjectInfo:
        check_name(name)
        body, etag = self._lookup(name)
        return ObjectInfo(name, len(body), etag)

    async def delete(self, name: str) -> None:
        check_name(name)
        self._lookup(name)
        del self._objects()[name.encode()]

    async def list_page(
        self, prefix: str = "", start_after: str | None = None, limit: int = 1000
    ) -> ListPage:
        objects = self._objects()
        keys = objects.keys()
        i = objects.bisect_left(prefix.encode())
        if start_after is not None:
            i = max(i, objects.bisect_right(start_after.encode()))
        items = []
        for key in keys[i : i + limit]:
            if not key.startswith(prefix.encode()):
                break
            body, etag = objects[key]
            items.append(ObjectInfo(key.decode(), len(body), etag))
        full = len(items) == limit
        return ListPage(items, items[-1].name if full and items else None)

    def _lookup(self, name: str) -> tuple[bytes, str]:
        try:
            return self._objects()[name.encode()]
        except KeyError:
            raise NotFound("object does not exist", name) from None


class _MemReader(ObjectReader):
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    async def receive_some(self) -> bytes:
        chunk, self._data = bytes(self._data[: 1 << 20]), self._data[1 << 20 :]
        return chunk

    async def aclose(self) -> None:
        self._data = memoryview(b"")
