"""The retry RPC server: runs each request of a client exactly once, across reconnects.

`RpcServer(handlers).serve(host, port)` accepts TCP (or TLS) connections, one
task each. A connection starts with a hello naming the client; it becomes the
client's `Session`, replacing (and closing) any older one of the same client.

A request runs in the server's nursery, not the connection's, so a cut
connection never interrupts a handler half way. Its reply goes to the
client's session of the moment it completes and into the client's
`ReplyTable`; a resent request is answered from the table, and one resent
while it still runs is not started again (its reply follows when it completes).
See objfs.rpc.replies for how the table is trimmed.

A client's table outlives its connections; it is dropped once the client has
been gone, with nothing stored or running, for longer than the reply TTL.

A connection that breaks the protocol (an oversized length prefix, a body
that is not msgpack, a message of the wrong shape) is logged and closed;
nothing else is affected.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

from objfs.rpc import wire
from objfs.rpc.errors import (
    InternalError,
    NoSuchMethod,
    ProtocolError,
    ReplyExpired,
    RpcError,
    RpcTimeout,
    RpcUnavailable,
)
from objfs.rpc.pending import PendingReply
from objfs.rpc.replies import ReplyTable, Status

log = logging.getLogger(__name__)

Handler = Callable[["Session", Any], Awaitable[Any]]

DEFAULT_REPLY_TTL = 600.0
DEFAULT_MAX_REPLIES = 4096
DEFAULT_UPCALL_TIMEOUT = 30.0
HELLO_TIMEOUT = 30.0  # a connection that names no client in time is closed
_CONNECTION_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError)


class Session:
    """One connection of one client; handlers use it to send upcalls."""

    def __init__(
        self, server: RpcServer, client_id: str, writer: wire.FrameWriter, peer: str
    ) -> None:
        self.server = server
        self.client_id = client_id
        self.peer = peer
        self._writer = writer
        self._cancel = trio.CancelScope()
        self._upcalls: dict[int, PendingReply] = {}
        self._next_upcall = 0
        self.closed = False

    def __repr__(self) -> str:
        return f"<Session {self.client_id} from {self.peer}>"

    async def send(self, frame: bytes) -> bool:
        """Send one frame; False (and the session closes) if the connection is gone."""
        if self.closed:
            return False
        try:
            await self._writer.send_frame(frame)
            return True
        except _CONNECTION_ERRORS as exc:
            log.info("%r: send failed: %r", self, exc)
            self.close()
            return False

    async def upcall(self, method: str, args: Any = None, timeout: float | None = None) -> Any:
        """Ask the client to run `method(args)`; its result, or its error raised.

        Upcalls are not resent: a lost connection fails them with RpcUnavailable.
        """
        uid = self._next_upcall
        self._next_upcall += 1
        waiter = self._upcalls[uid] = PendingReply()
        frame = wire.encode(wire.Upcall(uid, method, args), self.server.max_frame)
        limit = self.server.upcall_timeout if timeout is None else timeout
        try:
            with trio.fail_after(limit):
                if not await self.send(frame):
                    raise RpcUnavailable(f"{self!r} is closed")
                await waiter.done.wait()
        except trio.TooSlowError:
            raise RpcTimeout(f"upcall {method} to {self!r}: no reply in {limit}s") from None
        finally:
            del self._upcalls[uid]
        return waiter.outcome()

    def _upcall_replied(self, reply: wire.Reply) -> None:
        waiter = self._upcalls.get(reply.id)
        if waiter is None:
            log.info("%r: reply to unknown upcall %d", self, reply.id)
            return
        waiter.finish(reply=reply)

    def close(self) -> None:
        """Close the connection; upcalls waiting on it fail."""
        self.closed = True
        self._cancel.cancel()
        for waiter in self._upcalls.values():
            waiter.finish(error=RpcUnavailable(f"{self!r} closed"))


@dataclass
class _Client:
    table: ReplyTable
    session: Session | None = None
    last_seen: float = 0.0


class RpcServer:
    def __init__(
        self,
        handlers: dict[str, Handler],
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_frame: int = wire.DEFAULT_MAX_FRAME,
        reply_ttl: float = DEFAULT_REPLY_TTL,
        max_replies: int = DEFAULT_MAX_REPLIES,
        upcall_timeout: float = DEFAULT_UPCALL_TIMEOUT,
    ) -> None:
        self.handlers = dict(handlers)
        self.ssl_context = ssl_context
        self.max_frame = max_frame
        self.reply_ttl = reply_ttl
        self.max_replies = max_replies
        self.upcall_timeout = upcall_timeout
        self._clients: dict[str, _Client] = {}
        self._arrivals: dict[str, trio.Event] = {}  # clients someone waits for
        self._nursery: trio.Nursery | None = None
        self.port: int | None = None

    async def serve(
        self, host: str, port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled; reports the bound port (useful with port 0)."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        self.port = listeners[0].socket.getsockname()[1]
        log.info(
            "RPC server listening on %s:%d%s", host, self.port, " (TLS)" if self.ssl_context else ""
        )
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._sweep)
            await nursery.start(trio.serve_listeners, self._connection, listeners)
            task_status.started(self.port)

    def session(self, client_id: str) -> Session | None:
        """The client's current session, if it is connected."""
        client = self._clients.get(client_id)
        return client.session if client else None

    async def wait_session(self, client_id: str) -> Session:
        """The client's live session, once it has one (it may be reconnecting)."""
        while True:
            session = self.session(client_id)
            if session is not None and not session.closed:
                return session
            await self._arrivals.setdefault(client_id, trio.Event()).wait()

    def replies(self, client_id: str) -> ReplyTable | None:
        """The client's reply table (for status pages and tests)."""
        client = self._clients.get(client_id)
        return client.table if client else None

    async def _connection(self, stream: trio.SocketStream) -> None:
        peer = _peer(stream)
        conn: trio.abc.Stream = stream
        if self.ssl_context is not None:
            conn = trio.SSLStream(stream, self.ssl_context, server_side=True)
        session = None
        try:
            reader = wire.FrameReader(conn, self.max_frame)
            session = await self._hello(reader, wire.FrameWriter(conn), peer)
            if session is not None:
                with session._cancel:
                    await self._receive_loop(session, reader)
        except ProtocolError as exc:
            log.warning("connection from %s closed: protocol error: %s", peer, exc)
        except _CONNECTION_ERRORS as exc:
            log.info("connection from %s lost: %r", peer, exc)
        except Exception:
            log.exception("connection from %s failed", peer)
        finally:
            if session is not None:
                self._detach(session)
            await trio.aclose_forcefully(conn)

    async def _hello(
        self, reader: wire.FrameReader, writer: wire.FrameWriter, peer: str
    ) -> Session | None:
        msg = None
        with trio.move_on_after(HELLO_TIMEOUT) as waiting:
            msg = await reader.receive()
        if waiting.cancelled_caught:
            log.info("connection from %s sent no hello in %.0fs", peer, HELLO_TIMEOUT)
        if msg is None:
            return None
        if not isinstance(msg, wire.Hello):
            raise ProtocolError(f"expected hello, got {type(msg).__name__}")
        client = self._client(msg.client)
        if client.session is not None:
            log.info("%r replaced by a new connection from %s", client.session, peer)
            client.session.close()
        client.session = Session(self, msg.client, writer, peer)
        log.debug("%r connected", client.session)
        arrival = self._arrivals.pop(msg.client, None)
        if arrival is not None:
            arrival.set()
        return client.session

    def _client(self, client_id: str) -> _Client:
        client = self._clients.get(client_id)
        if client is None:
            table = ReplyTable(self.max_replies, self.reply_ttl)
            client = self._clients[client_id] = _Client(table)
        client.last_seen = trio.current_time()
        return client

    def _detach(self, session: Session) -> None:
        session.close()
        client = self._clients.get(session.client_id)
        if client is not None and client.session is session:
            client.session = None
            client.last_seen = trio.current_time()

    async def _receive_loop(self, session: Session, reader: wire.FrameReader) -> None:
        while (msg := await reader.receive()) is not None:
            if isinstance(msg, wire.Request):
                await self._request(session, msg)
            elif isinstance(msg, wire.Reply) and msg.upcall:
                session._upcall_replied(msg)
            else:
                raise ProtocolError(f"unexpected {type(msg).__name__} from a client")

    async def _request(self, session: Session, req: wire.Request) -> None:
        if req.client != session.client_id:
            raise ProtocolError(f"request for client {req.client!r} on {session!r}")
        client = self._client(req.client)
        client.table.acknowledge(req.ack)
        found = client.table.lookup(req.id)
        if isinstance(found, bytes):
            await session.send(found)
        elif found is Status.EXPIRED:
            err = ReplyExpired(f"request {req.id} was resent after its reply was dropped")
            await session.send(self._error_frame(req.id, err))
        elif found is Status.NEW:
            client.table.start(req.id)
            assert self._nursery is not None
            self._nursery.start_soon(self._run, session, req)
        # Status.RUNNING: the reply goes to the client's session when the first run ends.

    async def _run(self, session: Session, req: wire.Request) -> None:
        frame = await self._outcome(session, req)
        client = self._clients.get(req.client)
        if client is None:
            return
        client.table.finish(req.id, frame, trio.current_time())
        if client.session is not None:
            await client.session.send(frame)

    async def _outcome(self, session: Session, req: wire.Request) -> bytes:
        """The reply frame of running the request's handler."""
        handler = self.handlers.get(req.method)
        try:
            if handler is None:
                raise NoSuchMethod(f"no method {req.method!r}")
            result = await handler(session, req.args)
            return wire.encode(wire.Reply(req.id, result), self.max_frame)
        except RpcError as exc:
            return self._error_frame(req.id, exc)
        except Exception as exc:
            log.exception("%s(%s) from %s failed", req.method, req.id, req.client)
            return self._error_frame(req.id, InternalError(f"{req.method}: {exc!r}"))

    def _error_frame(self, rid: int, exc: RpcError) -> bytes:
        return wire.encode(wire.Reply(rid, error=(exc.code, exc.message[:4096])), self.max_frame)

    async def _sweep(self) -> None:
        """Trim reply tables by TTL; forget clients long gone."""
        while True:
            await trio.sleep(max(0.01, min(self.reply_ttl / 4, 10.0)))
            now = trio.current_time()
            for client_id, client in list(self._clients.items()):
                client.table.trim(now)
                gone = client.session is None and now - client.last_seen > self.reply_ttl
                if gone and client.table.idle():
                    del self._clients[client_id]


def _peer(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
        return f"{host}:{port}"
    except OSError:
        return "?"
