"""The one async object-storage interface every part of objfs talks to.

A backend implements the six abstract methods of `ObjectStore`; everything
else (whole-object get, listing across pages, name rules) is shared here so
that every backend behaves the same.

Semantics every backend honours (the conformance suite checks them):

- `put` replaces; `put(if_absent=True)` raises `AlreadyExists` when the name
  is taken, and of writers racing on one name exactly one succeeds.
- `open(name, offset, length)` streams a byte range. A range that starts at
  or past the end is empty, one that runs past the end is cut short; a
  missing object raises `NotFound` either way.
- `head` and `delete` raise `NotFound` for a missing object.
- `list_page` returns names in UTF-8 byte order, after `start_after`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import NoReturn, TypeVar

import trio

from objfs.storage.errors import InvalidName, StorageError

T = TypeVar("T")

MAX_NAME_BYTES = 1024
CHUNK_SIZE = 1 << 20


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    size: int
    etag: str | None = None
    modified: float | None = None  # last modified, seconds since the epoch, when listed


@dataclass(frozen=True)
class ListPage:
    items: list[ObjectInfo]
    # Pass as start_after to get the next page; None when this was the last.
    next_start_after: str | None


class Payload(ABC):
    """Bytes to upload that can be read again from the start.

    Uploads are retried from the beginning, so a payload is a recipe for a
    stream rather than the stream itself; large payloads never sit whole in
    memory.
    """

    size: int

    @abstractmethod
    def chunks(self) -> Iterator[bytes]:
        """A fresh iterator over the whole payload (called from worker threads)."""


class BytesPayload(Payload):
    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self.data = bytes(data)
        self.size = len(self.data)

    def chunks(self) -> Iterator[bytes]:
        for start in range(0, self.size, CHUNK_SIZE):
            yield self.data[start : start + CHUNK_SIZE]


class FilePayload(Payload):
    """A local file, read in chunks each time it is sent."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.size = os.stat(self.path).st_size

    def chunks(self) -> Iterator[bytes]:
        with open(self.path, "rb") as f:
            while chunk := f.read(CHUNK_SIZE):
                yield chunk


class GeneratedPayload(Payload):
    """`size` bytes produced by `make_chunks()`, e.g. synthetic test data."""

    def __init__(self, size: int, make_chunks: Callable[[], Iterator[bytes]]) -> None:
        self.size = size
        self._make_chunks = make_chunks

    def chunks(self) -> Iterator[bytes]:
        return self._make_chunks()


def read_whole(payload: Payload, name: str) -> bytes:
    """A payload small enough to send in one request, as one bytes object."""
    try:
        body = b"".join(payload.chunks())
    except BaseException as exc:
        raise_payload_error(exc, name)
    if len(body) != payload.size:
        raise StorageError(f"put: payload gave {len(body)} bytes, not {payload.size}", name)
    return body


def raise_payload_error(exc: BaseException, name: str) -> NoReturn:
    """Re-raise a failure to produce a payload: its own typed error, or a permanent one.

    A local read error is not the store's fault, so it must not be retried as
    a transient failure of the store.
    """
    if isinstance(exc, StorageError) or not isinstance(exc, Exception):
        raise exc from None
    raise StorageError(f"put: reading the payload failed: {exc}", name) from exc


def unquote_etag(etag: str | None) -> str | None:
    """An HTTP ETag without its quotes, as ObjectInfo carries it."""
    return etag.strip('"') if etag else None


def as_payload(data: bytes | bytearray | memoryview | Payload) -> Payload:
    return data if isinstance(data, Payload) else BytesPayload(data)


class ObjectReader(ABC):
    """A byte range being streamed; use as an async context manager."""

    @abstractmethod
    async def receive_some(self) -> bytes:
        """The next chunk, or b"" at the end of the range."""

    @abstractmethod
    async def aclose(self) -> None: ...

    async def __aenter__(self) -> ObjectReader:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.receive_some()
        if not chunk:
            raise StopAsyncIteration
        return chunk


class EmptyReader(ObjectReader):
    """A range with nothing in it (it starts at or past the end, or has length 0)."""

    async def receive_some(self) -> bytes:
        return b""

    async def aclose(self) -> None:
        pass


class ObjectStore(ABC):
    """One container of one backend."""

    #: The URL this store was opened from, with secrets removed.
    url: str

    @abstractmethod
    async def put(self, name: str, data: bytes | Payload, *, if_absent: bool = False) -> None:
        """Store `data` as `name`; with if_absent, raise AlreadyExists if taken."""

    @abstractmethod
    async def open(self, name: str, offset: int = 0, length: int | None = None) -> ObjectReader:
        """Start streaming `length` bytes (all when None) of `name` from `offset`."""

    @abstractmethod
    async def head(self, name: str) -> ObjectInfo: ...

    @abstractmethod
    async def delete(self, name: str) -> None: ...

    @abstractmethod
    async def list_page(
        self, prefix: str = "", start_after: str | None = None, limit: int = 1000
    ) -> ListPage: ...

    @abstractmethod
    async def ensure_container(self) -> None:
        """Create the container if it does not exist yet (idempotent)."""

    async def aclose(self) -> None:  # noqa: B027 (most backends hold nothing to release)
        """Release connections and threads; the store is unusable afterwards."""

    async def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        parts = []
        async with await self.open(name, offset, length) as reader:
            async for chunk in reader:
                parts.append(chunk)
        return b"".join(parts)

    async def list(self, prefix: str = "", page_size: int = 1000) -> AsyncIterator[ObjectInfo]:
        start_after = None
        while True:
            page = await self.list_page(prefix, start_after, page_size)
            for item in page.items:
                yield item
            if page.next_start_after is None:
                return
            start_after = page.next_start_after

    async def __aenter__(self) -> ObjectStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def check_name(name: str) -> None:
    """Refuse names that some backend cannot store faithfully.

    Azure rejects "." and ".." path segments and Swift caps names at 1024
    bytes, so every backend refuses the same set of names up front.
    """
    if not isinstance(name, str) or not name:
        raise InvalidName("object name must be a non-empty string", repr(name))
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidName(f"object name is longer than {MAX_NAME_BYTES} bytes", name[:64] + "...")
    if name.startswith("/") or name.endswith("/"):
        raise InvalidName("object name must not start or end with '/'", name)
    if any(_unstorable(c) for c in name):
        raise InvalidName("object name contains a control or non-character", name)
    if any(segment in ("", ".", "..") for segment in name.split("/")):
        raise InvalidName("object name has an empty, '.' or '..' path segment", name)


def _unstorable(c: str) -> bool:
    # Control characters, lone surrogates, and U+FFFE/U+FFFF, which XML
    # listings (Azure) cannot carry.
    code = ord(c)
    return code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF)


def check_range(offset: int, length: int | None) -> None:
    if offset < 0 or (length is not None and length < 0):
        raise ValueError(f"invalid byte range: offset={offset} length={length}")


async def run_blocking(limiter: trio.CapacityLimiter, fn: Callable[..., T], *args: object) -> T:
    """Run a blocking SDK call in a worker thread, at most `limiter` at once."""
    return await trio.to_thread.run_sync(fn, *args, limiter=limiter)
