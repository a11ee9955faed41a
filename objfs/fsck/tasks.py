"""Work on many items at once, a bounded number at a time, failing as plainly as one call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import trio

T = TypeVar("T")


async def each(items: Iterable[T], work: Callable[[T], Awaitable[None]], limit: int) -> None:
    """`work(item)` for every item, `limit` at once.

    The first failure stops the rest and is raised as itself, not inside an
    exception group, so callers handle a StorageError from here as from any call.
    """
    failed: list[Exception] = []
    send, receive = trio.open_memory_channel[T](0)

    async def worker(receive: trio.MemoryReceiveChannel[T]) -> None:
        async with receive:
            async for item in receive:
                try:
                    await work(item)
                except Exception as exc:
                    failed.append(exc)
                    nursery.cancel_scope.cancel()
                    return

    async with trio.open_nursery() as nursery:
        async with receive:
            for _ in range(limit):
                nursery.start_soon(worker, receive.clone())
        async with send:
            for item in items:
                await send.send(item)
    if failed:
        raise failed[0]
