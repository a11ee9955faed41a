"""Malformed input closes that one connection; other clients keep working."""

from __future__ import annotations

import logging
import struct

import msgpack
import pytest
import trio

from objfs.rpc import RpcClient
from tests.rpc.helpers import serving

DEADLINE = 10.0


def frame(obj: object) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


HELLO = frame({"k": "hello", "v": 1, "c": "raw-client"})

BAD_INPUTS = {
    "2 GiB prefix": b"\x80\x00\x00\x00" + b"x" * 100,
    "max prefix after hello": HELLO + b"\xff\xff\xff\xff",
    "not msgpack": b"\x00\x00\x00\x05hello",
    "truncated msgpack": b"\x00\x00\x00\x03\x93\x01\x02",
    "empty body": b"\x00\x00\x00\x00",
    "not a map": frame([1, 2, 3]),
    "unknown kind": frame({"k": "nonsense"}),
    "request before hello": frame({"k": "req", "c": "x", "i": 0, "m": "get", "a": None, "ack": 0}),
    "negative id": HELLO
    + frame({"k": "req", "c": "raw-client", "i": -1, "m": "get", "a": None, "ack": 0}),
    "string id": HELLO
    + frame({"k": "req", "c": "raw-client", "i": "1", "m": "get", "a": None, "ack": 0}),
    "other client's id": HELLO
    + frame({"k": "req", "c": "thief", "i": 0, "m": "get", "a": None, "ack": 0}),
    "reply from a client": HELLO + frame({"k": "rep", "i": 0, "r": 1}),
    "wrong version": frame({"k": "hello", "v": 99, "c": "raw-client"}),
}


async def assert_refused(port: int, data: bytes) -> None:
    """Send raw bytes; the server must close the connection without answering."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        received = b""
        try:
            while chunk := await stream.receive_some(65536):
                received += chunk
        except trio.BrokenResourceError:
            pass  # a reset is a close as well
        assert received == b""


async def test_garbage_refused_while_client_keeps_working(counter_server):
    port = counter_server.port
    with trio.fail_after(DEADLINE):
        async with RpcClient.connect("127.0.0.1", port) as client:
            before = await client.call("get")
            done = trio.Event()
            busy_results = []

            async def busy() -> None:
                while not done.is_set():
                    busy_results.append(await client.call("get"))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(busy)
                for data in BAD_INPUTS.values():
                    await assert_refused(port, data)
                    assert await client.call("get") == before
                done.set()
            assert client.reconnects == 0
            assert busy_results and set(busy_results) == {before}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
async def test_garbage_logged(case, caplog):
    caplog.set_level(logging.WARNING, logger="objfs.rpc.server")

    async def get(session, args):
        return 1

    with trio.fail_after(DEADLINE):
        async with serving({"get": get}, max_frame=1024) as (_server, port):
            await assert_refused(port, BAD_INPUTS[case])
            async with RpcClient.connect("127.0.0.1", port) as client:
                assert await client.call("get") == 1
    assert any("protocol error" in r.getMessage() for r in caplog.records), caplog.text


async def test_frame_limit_is_configurable():
    async def echo(session, args):
        return args

    with trio.fail_after(DEADLINE):
        async with serving({"echo": echo}, max_frame=1024) as (_server, port):
            await assert_refused(port, HELLO + struct.pack(">I", 1025) + b"\x00" * 1025)
            async with RpcClient.connect("127.0.0.1", port) as client:
                assert await client.call("echo", "x" * 500) == "x" * 500
