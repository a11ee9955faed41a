"""Client failures: timeouts, a server that stays away, unknown methods and codes."""

from __future__ import annotations

import errno

import pytest
import trio

from objfs.rpc import (
    NoSuchMethod,
    NotFound,
    ReconnectPolicy,
    RpcClient,
    RpcError,
    RpcTimeout,
    RpcUnavailable,
    error_for,
)
from tests.rpc.helpers import serving

DEADLINE = 10.0
QUICK = ReconnectPolicy(attempts=3, base_delay=0.01, max_delay=0.02, connect_timeout=2.0)


async def test_unreachable_server_gives_up_clearly():
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nobody listens there now
    with trio.fail_after(DEADLINE):
        with pytest.raises(RpcUnavailable, match="unreachable after 3 attempts"):
            async with RpcClient.connect("127.0.0.1", port, policy=QUICK):
                pass  # pragma: no cover


async def test_calls_fail_once_the_server_stays_away():
    async def get(session, args):
        return 1

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            server_scope = trio.CancelScope()
            ports: list[int] = []
            ready = trio.Event()

            async def run_server() -> None:
                with server_scope:
                    async with serving({"get": get}) as (_server, port):
                        ports.append(port)
                        ready.set()
                        await trio.sleep_forever()

            nursery.start_soon(run_server)
            await ready.wait()
            async with RpcClient.connect("127.0.0.1", ports[0], policy=QUICK) as client:
                assert await client.call("get") == 1
                server_scope.cancel()
                with pytest.raises(RpcUnavailable):
                    await client.call("get")


async def test_timeout_and_unknown_method():
    async def hang(session, args):
        await trio.sleep_forever()

    with trio.fail_after(DEADLINE):
        async with serving({"hang": hang}) as (_server, port):
            async with RpcClient.connect("127.0.0.1", port) as client:
                with pytest.raises(RpcTimeout):
                    await client.call("hang", timeout=0.05)
                with pytest.raises(NoSuchMethod):
                    await client.call("nope")


async def test_handler_crash_is_internal_and_server_survives(caplog):
    async def crash(session, args):
        raise ZeroDivisionError("boom")

    async def ok(session, args):
        return "fine"

    with trio.fail_after(DEADLINE):
        async with serving({"crash": crash, "ok": ok}) as (_server, port):
            async with RpcClient.connect("127.0.0.1", port) as client:
                with pytest.raises(RpcError) as info:
                    await client.call("crash")
                assert info.value.code == "internal" and info.value.errno == errno.EIO
                assert await client.call("ok") == "fine"
    assert "crash" in caplog.text and "ZeroDivisionError" in caplog.text


def test_error_registry():
    err = error_for("not_found", "no inode 7")
    assert isinstance(err, NotFound) and err.errno == errno.ENOENT and err.message == "no inode 7"
    other = error_for("martian", "what")
    assert type(other) is RpcError and other.code == "martian" and other.errno == errno.EIO
