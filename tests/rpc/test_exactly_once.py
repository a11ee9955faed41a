"""Non-idempotent calls through a proxy that keeps cutting the connection run exactly once."""

from __future__ import annotations

import trio

from objfs.rpc import InvalidArgument, ReconnectPolicy, RpcClient
from tests.rpc.proxy import CuttingProxy

CALLS = 1000
DEADLINE = 25.0
FAST = ReconnectPolicy(attempts=50, base_delay=0.001, max_delay=0.02, connect_timeout=5.0)


async def _count(port: int) -> int:
    async with RpcClient.connect("127.0.0.1", port) as client:
        return await client.call("get")


async def test_sequential_increments_survive_cuts(counter_server):
    base = await _count(counter_server.port)
    proxy = CuttingProxy(counter_server.port, seed=20261122)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(proxy.run)
            async with RpcClient.connect("127.0.0.1", port, policy=FAST) as client:
                results = [await client.call("increment") for _ in range(CALLS)]
            nursery.cancel_scope.cancel()
    assert results == list(range(base + 1, base + CALLS + 1))
    assert await _count(counter_server.port) == base + CALLS
    assert proxy.cuts >= 30, proxy.cuts
    assert proxy.boundary_cuts >= 5, proxy.boundary_cuts
    assert client.reconnects >= 30


async def test_concurrent_increments_survive_cuts(counter_server):
    base = await _count(counter_server.port)
    proxy = CuttingProxy(counter_server.port, seed=7, max_budget=3000)
    per_task: list[list[int]] = []

    async def caller(client: RpcClient, calls: int) -> None:
        mine: list[int] = []
        per_task.append(mine)
        for _ in range(calls):
            mine.append(await client.call("increment"))

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(proxy.run)
            async with RpcClient.connect("127.0.0.1", port, policy=FAST) as client:
                async with trio.open_nursery() as callers:
                    for _ in range(10):
                        callers.start_soon(caller, client, CALLS // 10)
            nursery.cancel_scope.cancel()
    every = sorted(value for mine in per_task for value in mine)
    assert every == list(range(base + 1, base + CALLS + 1))
    assert all(mine == sorted(mine) for mine in per_task)
    assert await _count(counter_server.port) == base + CALLS
    assert proxy.cuts >= 10, proxy.cuts


async def test_server_errors_map_to_classes(counter_server):
    async with RpcClient.connect("127.0.0.1", counter_server.port) as client:
        try:
            await client.call("fail", [1, 2])
        except InvalidArgument as exc:
            assert exc.code == "invalid" and "refused" in exc.message
        else:
            raise AssertionError("no error")
