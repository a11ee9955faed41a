"""Helpers for the RPC tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import trio

from objfs.rpc import RpcServer


@contextlib.asynccontextmanager
async def serving(handlers: dict, **options: object) -> AsyncIterator[tuple[RpcServer, int]]:
    """An in-process server on a free port of 127.0.0.1, stopped at exit."""
    server = RpcServer(handlers, **options)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve, "127.0.0.1", 0)
        try:
            yield server, port
        finally:
            nursery.cancel_scope.cancel()
