"""The server's reply table: resent ids get the stored reply; acks, TTL and bound trim it."""

from __future__ import annotations

import trio

from objfs.rpc import ReplyExpired, RpcClient, wire
from objfs.rpc.replies import ReplyTable, Status
from tests.rpc.helpers import serving

DEADLINE = 10.0
CLIENT = "raw-client"


def test_stored_reply_for_a_resent_id():
    table = ReplyTable(max_replies=8, ttl=10.0)
    assert table.lookup(0) is Status.NEW
    table.start(0)
    assert table.lookup(0) is Status.RUNNING
    table.finish(0, b"reply-0", now=1.0)
    assert table.lookup(0) == b"reply-0"
    assert table.lookup(1) is Status.NEW


def test_acks_trim():
    table = ReplyTable(max_replies=8, ttl=10.0)
    for rid in range(5):
        table.start(rid)
        table.finish(rid, b"r%d" % rid, now=1.0)
    table.acknowledge(3)
    assert table.ids() == [3, 4]
    assert table.lookup(1) is Status.EXPIRED
    table.acknowledge(2)  # acks never go back
    assert table.floor == 3


def test_ttl_trims():
    table = ReplyTable(max_replies=8, ttl=10.0)
    for rid, done in enumerate([1.0, 2.0, 5.0]):
        table.start(rid)
        table.finish(rid, b"r", now=done)
    table.trim(now=12.5)
    assert table.ids() == [2]
    assert table.lookup(0) is Status.EXPIRED and table.lookup(1) is Status.EXPIRED
    table.trim(now=100.0)
    assert len(table) == 0 and table.idle()


def test_bound_is_respected_and_forgotten_ids_stay_refused():
    table = ReplyTable(max_replies=4, ttl=1e9, max_forgotten=10)
    for rid in range(100):
        table.start(rid)
        table.finish(rid, b"r", now=float(rid))
        assert len(table) <= 4
    assert table.ids() == [96, 97, 98, 99]
    assert all(table.lookup(rid) is Status.EXPIRED for rid in range(96))
    assert table.lookup(100) is Status.NEW


def test_late_completion_below_the_ack_is_not_stored():
    table = ReplyTable(max_replies=4, ttl=10.0)
    table.start(0)
    table.acknowledge(1)  # the client timed out on request 0
    table.finish(0, b"late", now=1.0)
    assert len(table) == 0 and table.idle()


class RawClient:
    """Speaks the wire protocol by hand, to resend ids at will."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.reader = wire.FrameReader(stream)

    @classmethod
    async def open(cls, port: int) -> RawClient:
        raw = cls(await trio.open_tcp_stream("127.0.0.1", port))
        await raw.stream.send_all(wire.encode(wire.Hello(CLIENT)))
        return raw

    async def request(self, rid: int, ack: int, method: str = "increment") -> wire.Reply:
        await self.stream.send_all(wire.encode(wire.Request(CLIENT, rid, method, None, ack)))
        reply = await self.reader.receive()
        assert isinstance(reply, wire.Reply) and reply.id == rid
        return reply


def counting_handlers() -> tuple[dict, list[int]]:
    runs: list[int] = []

    async def increment(session, args):
        runs.append(1)
        return len(runs)

    return {"increment": increment}, runs


async def test_resent_request_answered_from_table():
    handlers, runs = counting_handlers()
    with trio.fail_after(DEADLINE):
        async with serving(handlers) as (server, port):
            raw = await RawClient.open(port)
            assert (await raw.request(0, ack=0)).result == 1
            assert (await raw.request(0, ack=0)).result == 1
            await raw.stream.aclose()
            raw = await RawClient.open(port)  # a reconnect resends it once more
            assert (await raw.request(0, ack=0)).result == 1
            assert (await raw.request(1, ack=0)).result == 2
            assert runs == [1, 1]
            assert server.replies(CLIENT).ids() == [0, 1]
            # the ack of request 2 says the client holds replies 0 and 1
            assert (await raw.request(2, ack=2)).result == 3
            assert server.replies(CLIENT).ids() == [2]
            reply = await raw.request(0, ack=2)
            assert reply.error is not None and reply.error[0] == ReplyExpired.code
            assert runs == [1, 1, 1]
            await raw.stream.aclose()


async def test_request_resent_while_running_runs_once():
    runs: list[int] = []
    started, release = trio.Event(), trio.Event()

    async def slow(session, args):
        runs.append(1)
        started.set()
        await release.wait()
        return "done"

    with trio.fail_after(DEADLINE):
        async with serving({"slow": slow}) as (_server, port):
            first = await RawClient.open(port)
            await first.stream.send_all(wire.encode(wire.Request(CLIENT, 0, "slow", None, 0)))
            await started.wait()
            await first.stream.aclose()
            second = await RawClient.open(port)
            await second.stream.send_all(wire.encode(wire.Request(CLIENT, 0, "slow", None, 0)))
            await second.stream.send_all(wire.encode(wire.Request(CLIENT, 0, "slow", None, 0)))
            release.set()
            reply = await second.reader.receive()
            assert isinstance(reply, wire.Reply) and reply.result == "done"
            assert runs == [1]
            await second.stream.aclose()


async def test_server_ttl_and_bound():
    handlers, runs = counting_handlers()
    with trio.fail_after(DEADLINE):
        async with serving(handlers, max_replies=3, reply_ttl=0.2) as (server, port):
            raw = await RawClient.open(port)
            for rid in range(10):
                await raw.request(rid, ack=0)
                assert len(server.replies(CLIENT)) <= 3
            assert server.replies(CLIENT).ids() == [7, 8, 9]
            while len(server.replies(CLIENT)):  # the sweeper applies the TTL
                await trio.sleep(0.02)
            reply = await raw.request(9, ack=0)
            assert reply.error is not None and reply.error[0] == "reply_expired"
            assert len(runs) == 10
            await raw.stream.aclose()


async def test_client_acks_keep_the_table_small():
    handlers, runs = counting_handlers()
    with trio.fail_after(DEADLINE):
        async with serving(handlers) as (server, port):
            async with RpcClient.connect("127.0.0.1", port, client_id="acker") as client:
                for _ in range(50):
                    await client.call("increment")
                assert len(server.replies("acker")) == 1
