"""Upcalls: the server asks the client, on the same connection, and gets its reply."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from objfs.rpc import NoSuchMethod, NotFound, RpcClient, RpcUnavailable
from tests.rpc.helpers import serving

DEADLINE = 10.0


async def ask_client(session, args):
    return await session.upcall("ping", args, timeout=5.0)


async def test_handler_upcall_reaches_client():
    seen = []

    async def ping(args):
        seen.append(args)
        return {"pong": args["n"] + 1}

    with trio.fail_after(DEADLINE):
        async with serving({"ask": ask_client}) as (_server, port):
            async with RpcClient.connect("127.0.0.1", port, upcalls={"ping": ping}) as client:
                assert await client.call("ask", {"n": 41}) == {"pong": 42}
    assert seen == [{"n": 41}]


async def test_server_finds_session_by_client_id():
    async def ping(args):
        raise NotFound(f"no lease {args}")

    async def hello(session, args):
        return "hi"

    with trio.fail_after(DEADLINE):
        async with serving({"hello": hello}) as (server, port):
            async with RpcClient.connect(
                "127.0.0.1", port, client_id="mount-7", upcalls={"ping": ping}
            ) as client:
                await client.call("hello")
                session = server.session("mount-7")
                assert session is not None and session.client_id == "mount-7"
                with pytest.raises(NotFound, match="no lease 3"):
                    await session.upcall("ping", 3)
                with pytest.raises(NoSuchMethod):
                    await session.upcall("unknown")
            # the client is gone: its session with it
            while server.session("mount-7") is not None:
                await trio.sleep(0.01)
            with pytest.raises(RpcUnavailable):
                await session.upcall("ping", 4)


async def test_server_waits_for_a_client_to_connect():
    async def hello(session, args):
        return "hi"

    with trio.fail_after(DEADLINE):
        async with serving({"hello": hello}) as (server, port):
            found = []

            async def wait() -> None:
                found.append(await server.wait_session("late"))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait)
                await trio.testing.wait_all_tasks_blocked()
                assert not found
                async with RpcClient.connect("127.0.0.1", port, client_id="late") as client:
                    await client.call("hello")
            assert found and found[0].client_id == "late"
