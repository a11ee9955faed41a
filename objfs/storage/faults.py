"""A store that misbehaves on purpose, for tests of everything above storage.

`FaultyStore` wraps a real backend and injects, at seeded random:

- transient errors, half of them before the request reaches the backend and
  half after it was carried out (a lost reply, the case that makes retries
  ambiguous);
- added latency on every request;
- connections dropped after a given number of bytes of an upload or a read.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import trio

from objfs.storage.api import ListPage, ObjectInfo, ObjectReader, ObjectStore, Payload, as_payload
from objfs.storage.errors import TransientError

T = TypeVar("T")


@dataclass(frozen=True)
class Faults:
    error_rate: float = 0.0  # chance that a request fails
    latency: float = 0.0  # seconds added to every request
    drop_after: int | None = None  # cut transfers after this many bytes...
    drop_rate: float = 1.0  # ...with this chance per transfer
    failed_requests: int = 0  # the first N requests fail before reaching the store
    lost_replies: int = 0  # the first N requests are carried out, then fail
    seed: int | None = None


class InjectedFault(TransientError):
    pass


class FaultyStore(ObjectStore):
    def __init__(self, inner: ObjectStore, faults: Faults) -> None:
        self.inner, self.faults = inner, faults
        self.url = inner.url
        self.injected = 0
        self._random = random.Random(faults.seed)
        self._requests_to_fail = faults.failed_requests
        self._replies_to_lose = faults.lost_replies

    def _roll(self, chance: float) -> bool:
        return chance > 0 and self._random.random() < chance

    def _fault(self, what: str, name: str | None) -> InjectedFault:
        self.injected += 1
        return InjectedFault(f"injected fault in {what}", name)

    async def _call(self, what: str, name: str | None, op: Callable[[], Awaitable[T]]) -> T:
        if self.faults.latency:
            await trio.sleep(self.faults.latency)
        if self._requests_to_fail > 0 or self._roll(self.faults.error_rate / 2):
            self._requests_to_fail -= 1
            raise self._fault(what, name)
        result = await op()
        if self._replies_to_lose > 0 or self._roll(self.faults.error_rate / 2):
            self._replies_to_lose -= 1
            raise self._fault(f"{what} (reply lost)", name)
        return result

    def _drop_point(self) -> int | None:
        drop_after = self.faults.drop_after
        return drop_after if drop_after is not None and self._roll(self.faults.drop_rate) else None

    async def ensure_container(self) -> None:
        await self._call("create container", self.url, self.inner.ensure_container)

    async def put(self, name: str, data: bytes | Payload, *, if_absent: bool = False) -> None:
        payload = as_payload(data)
        drop_at = self._drop_point()
        if drop_at is not None and payload.size > drop_at:
            payload = _DroppingPayload(payload, drop_at, self._fault("put upload", name))
        await self._call("put", name, lambda: self.inner.put(name, payload, if_absent=if_absent))

    async def open(self, name: str, offset: int = 0, length: int | None = None) -> ObjectReader:
        reader = await self._call("get", name, lambda: self.inner.open(name, offset, length))
        drop_at = self._drop_point()
        return reader if drop_at is None else _DroppingReader(self, reader, name, drop_at)

    async def head(self, name: str) -> ObjectInfo:
        return await self._call("head", name, lambda: self.inner.head(name))

    async def delete(self, name: str) -> None:
        await self._call("delete", name, lambda: self.inner.delete(name))

    async def list_page(
        self, prefix: str = "", start_after: str | None = None, limit: int = 1000
    ) -> ListPage:
        return await self._call(
            "list", prefix, lambda: self.inner.list_page(prefix, start_after, limit)
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


class _DroppingPayload(Payload):
    """Sends `drop_at` bytes, then fails like a reset connection."""

    def __init__(self, inner: Payload, drop_at: int, error: InjectedFault) -> None:
        self.inner, self.size, self._drop_at, self._error = inner, inner.size, drop_at, error

    def chunks(self) -> Iterator[bytes]:
        sent = 0
        for chunk in self.inner.chunks():
            if sent + len(chunk) > self._drop_at:
                yield chunk[: self._drop_at - sent]
                raise self._error
            sent += len(chunk)
            yield chunk


class _DroppingReader(ObjectReader):
    def __init__(self, store: FaultyStore, inner: ObjectReader, name: str, drop_at: int) -> None:
        self._store, self._inner, self._name, self._left = store, inner, name, drop_at

    async def receive_some(self) -> bytes:
        if self._left <= 0:
            raise self._store._fault("get stream", self._name)
        chunk = await self._inner.receive_some()
        if len(chunk) > self._left:
            chunk = chunk[: self._left]
        self._left -= len(chunk)
        return chunk

    async def aclose(self) -> None:
        await self._inner.aclose()
