"""Retries of transient failures, with exponential back-off and full jitter.

`RetryingStore` wraps a backend. Only `TransientError` is retried; every
other error surfaces at once. When the attempts run out the caller gets
`Unavailable` naming the object, with the last failure chained.

Retrying a request whose reply was lost makes some answers ambiguous, and
those are settled here rather than left to callers:

- a retried delete that finds nothing: an earlier attempt deleted it;
- a retried create-if-absent that finds the name taken: it is ours when the
  stored bytes equal the payload;
- a stream that breaks mid-read resumes from the byte where it stopped.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import trio

from objfs.backoff import full_jitter
from objfs.storage.api import ListPage, ObjectInfo, ObjectReader, ObjectStore, Payload, as_payload
from objfs.storage.errors import AlreadyExists, NotFound, TransientError, Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8
    base_delay: float = 0.05
    max_delay: float = 5.0

    def delays(self) -> Iterator[float]:
        """Sleeps before attempts 2..attempts ("full jitter" back-off)."""
        return full_jitter(self.attempts, self.base_delay, self.max_delay)


class RetryingStore(ObjectStore):
    def __init__(self, inner: ObjectStore, policy: RetryPolicy | None = None) -> None:
        self.inner = inner
        self.policy = policy or RetryPolicy()
        self.url = inner.url
        self.retries = 0  # transient failures absorbed so far, for status pages

    async def _call(self, what: str, name: str | None, op: Callable[[int], Awaitable[T]]) -> T:
        """Run op(attempt) until it succeeds, fails permanently or attempts run out."""
        delays = self.policy.delays()
        attempt = 0
        while True:
            try:
                return await op(attempt)
            except TransientError as exc:
                delay = next(delays, None)
                if delay is None:
                    raise Unavailable(
                        f"{what} failed {attempt + 1} times, last: {exc}", name
                    ) from exc
                self.retries += 1
                log.info("%s %r: %s; retry %d in %.2fs", what, name, exc, attempt + 1, delay)
                await trio.sleep(delay)
                attempt += 1

    async def ensure_container(self) -> None:
        await self._call("create container", self.url, lambda _: self.inner.ensure_container())

    async def put(self, name: str, data: bytes | Payload, *, if_absent: bool = False) -> None:
        payload = as_payload(data)

        async def attempt(n: int) -> None:
            try:
                await self.inner.put(name, payload, if_absent=if_absent)
            except AlreadyExists:
                if n == 0 or not await self._holds(name, payload):
                    raise
                log.info("put %r: an earlier attempt had succeeded", name)

        await self._call("put", name, attempt)

    async def _holds(self, name: str, payload: Payload) -> bool:
        """Whether the stored object is byte for byte `payload`."""
        stored = hashlib.sha256()
        try:
            async with await self.open(name) as reader:
                async for chunk in reader:
                    stored.update(chunk)
        except NotFound:  # taken, yet gone again (deleted, or a claim without an object)
            return False
        sent = await trio.to_thread.run_sync(_digest, payload)
        return stored.digest() == sent

    async def open(self, name: str, offset: int = 0, length: int | None = None) -> ObjectReader:
        reader = await self._call("get", name, lambda _: self.inner.open(name, offset, length))
        return _ResumingReader(self, reader, name, offset, length)

    async def head(self, name: str) -> ObjectInfo:
        return await self._call("head", name, lambda _: self.inner.head(name))

    async def delete(self, name: str) -> None:
        async def attempt(n: int) -> None:
            try:
                await self.inner.delete(name)
            except NotFound:
                if n == 0:
                    raise
                log.info("delete %r: an earlier attempt had succeeded", name)

        await self._call("delete", name, attempt)

    async def list_page(
        self, prefix: str = "", start_after: str | None = None, limit: int = 1000
    ) -> ListPage:
        return await self._call(
            "list", prefix, lambda _: self.inner.list_page(prefix, start_after, limit)
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def _digest(payload: Payload) -> bytes:
    h = hashlib.sha256()
    for chunk in payload.chunks():
        h.update(chunk)
    return h.digest()


class _ResumingReader(ObjectReader):
    """Reopens the range where it broke off when the stream fails transiently."""

    def __init__(
        self,
        store: RetryingStore,
        reader: ObjectReader,
        name: str,
        offset: int,
        length: int | None,
    ) -> None:
        self._store, self._reader, self._name = store, reader, name
        self._offset, self._length = offset, length

    async def receive_some(self) -> bytes:
        async def attempt(n: int) -> bytes:
            if n:
                await self._reader.aclose()
                self._reader = await self._store.inner.open(self._name, self._offset, self._length)
            return await self._reader.receive_some()

        chunk = await self._store._call("get", self._name, attempt)
        self._offset += len(chunk)
        if self._length is not None:
            self._length -= len(chunk)
        return chunk

    async def aclose(self) -> None:
        await self._reader.aclose()
