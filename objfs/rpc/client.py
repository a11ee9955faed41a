"""The retry RPC client: calls survive lost connections without running twice.

    async with RpcClient.connect(host, port) as client:
        value = await client.call("increment", {"by": 1})

Calls may be made from many tasks at once. Each gets the next request id of
this client (the client id is random unless given, and is the same on every
connection). When the connection is lost (reset, EOF, TLS failure, a
malformed frame) a background task reconnects with exponential back-off and
full jitter and resends every request still waiting, with the same ids; the
server answers those it already ran from its reply table. A call fails only
with the server's error, with RpcTimeout when its own timeout passes, or with
RpcUnavailable once the reconnect policy gives up (the next call then starts
a fresh round of attempts). A TLS certificate that fails verification is not
retried: connect() raises RpcUnavailable at once.

Upcalls from the server run in their own tasks, through the `upcalls` handlers.
"""

from __future__ import annotations

import logging
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import trio

from objfs.backoff import full_jitter
from objfs.rpc import wire
from objfs.rpc.errors import (
    InternalError,
    NoSuchMethod,
    ProtocolError,
    RpcError,
    RpcTimeout,
    RpcUnavailable,
)
from objfs.rpc.pending import PendingReply

log = logging.getLogger(__name__)

UpcallHandler = Callable[[Any], Awaitable[Any]]
_CONNECTION_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError, ProtocolError)


@dataclass(frozen=True)
class ReconnectPolicy:
    """How hard to try after a lost connection (per outage)."""

    attempts: int = 10
    base_delay: float = 0.05
    max_delay: float = 5.0
    connect_timeout: float = 10.0

    def delays(self) -> Iterator[float]:
        """Sleeps before attempts 2..attempts ("full jitter" back-off)."""
        return full_jitter(self.attempts, self.base_delay, self.max_delay)


@dataclass
class _Call(PendingReply):
    request: wire.Request = field(kw_only=True)


class _Connection:
    """One live connection; `ready` once every waiting request was (re)sent on it."""

    def __init__(self, stream: trio.abc.Stream, max_frame: int) -> None:
        self.stream = stream
        self.reader = wire.FrameReader(stream, max_frame)
        self.writer = wire.FrameWriter(stream)
        self.sent: set[int] = set()
        self.ready = False
        self.cancel = trio.CancelScope()

    async def send(self, frame: bytes) -> None:
        """Send a frame; on failure the connection is torn down (and replaced)."""
        try:
            await self.writer.send_frame(frame)
        except _CONNECTION_ERRORS as exc:
            log.info("send failed: %r", exc)
            self.cancel.cancel()


class RpcClient:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        upcalls: dict[str, UpcallHandler] | None = None,
        policy: ReconnectPolicy | None = None,
        max_frame: int = wire.DEFAULT_MAX_FRAME,
    ) -> None:
        self.host, self.port = host, port
        self.client_id = client_id or uuid.uuid4().hex
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname or host
        self.upcalls = dict(upcalls or {})
        self.policy = policy or ReconnectPolicy()
        self.max_frame = max_frame
        self.reconnects = 0  # connections replaced so far, for status pages and tests
        self._pending: dict[int, _Call] = {}
        self._next_id = 0
        self._conn: _Connection | None = None
        self._wanted = trio.Event()  # set when a call waits for a connection
        self._closed = False
        self._nursery: trio.Nursery | None = None

    @classmethod
    @asynccontextmanager
    async def connect(cls, host: str, port: int, **options: Any) -> AsyncIterator[RpcClient]:
        """Connect (with the reconnect policy); yields the client, closes it at exit.

        Options are those of the constructor. Raises RpcUnavailable when the
        first connection cannot be made.
        """
        client = cls(host, port, **options)
        conn = await client._connect_retrying()
        try:
            async with trio.open_nursery() as nursery:
                client._nursery = nursery
                nursery.start_soon(client._maintain, conn)
                try:
                    yield client
                finally:
                    client._close()
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The background task does not fail: what is here came from the body.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise

    async def call(self, method: str, args: Any = None, timeout: float | None = None) -> Any:
        """Run `method(args)` on the server; its result, or its error raised."""
        if self._closed:
            raise RpcUnavailable("client is closed")
        call = _Call(request=wire.Request(self.client_id, self._next_id, method, args, 0))
        self._next_id += 1
        self._pending[call.request.id] = call
        self._wanted.set()
        try:
            with trio.fail_after(timeout) if timeout is not None else nullcontext():
                conn = self._conn
                if conn is not None and conn.ready:
                    await self._send_request(conn, call)
                await call.done.wait()
        except trio.TooSlowError:
            raise RpcTimeout(f"{method}: no reply within {timeout}s") from None
        finally:
            del self._pending[call.request.id]
        return call.outcome()

    def _ack(self) -> int:
        return min(self._pending, default=self._next_id)

    async def _send_request(self, conn: _Connection, call: _Call) -> None:
        rid = call.request.id
        if rid in conn.sent:
            return
        conn.sent.add(rid)
        req = call.request
        msg = wire.Request(req.client, rid, req.method, req.args, self._ack())
        try:
            frame = wire.encode(msg, self.max_frame)
        except (TypeError, ValueError, ProtocolError) as exc:
            call.finish(error=RpcError("invalid", f"cannot encode {req.method} request: {exc}"))
            return
        await conn.send(frame)

    async def _maintain(self, conn: _Connection) -> None:
        """Serve connections one after another until the client closes."""
        while True:
            await self._serve(conn)
            self.reconnects += 1
            conn = await self._reconnect()

    async def _reconnect(self) -> _Connection:
        while True:
            try:
                return await self._connect_retrying()
            except RpcUnavailable as exc:
                for call in list(self._pending.values()):
                    call.finish(error=exc)
                self._wanted = trio.Event()
                await self._wanted.wait()  # try again when someone calls

    async def _serve(self, conn: _Connection) -> None:
        """Resend what waits, then dispatch replies until the connection is lost."""
        self._conn = conn
        try:
            with conn.cancel:
                while unsent := sorted(set(self._pending) - conn.sent):
                    for rid in unsent:
                        if rid in self._pending:
                            await self._send_request(conn, self._pending[rid])
                conn.ready = True
                await self._receive_loop(conn)
        except _CONNECTION_ERRORS as exc:
            log.info("connection to %s:%d lost: %r", self.host, self.port, exc)
        finally:
            self._conn = None
            await trio.aclose_forcefully(conn.stream)

    async def _receive_loop(self, conn: _Connection) -> None:
        while (msg := await conn.reader.receive()) is not None:
            if isinstance(msg, wire.Reply) and not msg.upcall:
                call = self._pending.get(msg.id)
                if call is not None:
                    call.finish(reply=msg)
            elif isinstance(msg, wire.Upcall):
                assert self._nursery is not None
                self._nursery.start_soon(self._upcall, conn, msg)
            else:
                raise ProtocolError(f"unexpected {type(msg).__name__} from the server")
        log.info("server %s:%d closed the connection", self.host, self.port)

    async def _upcall(self, conn: _Connection, up: wire.Upcall) -> None:
        handler = self.upcalls.get(up.method)
        try:
            if handler is None:
                raise NoSuchMethod(f"no upcall {up.method!r}")
            reply = wire.Reply(up.id, await handler(up.args), upcall=True)
            frame = wire.encode(reply, self.max_frame)
        except RpcError as exc:
            frame = wire.encode(wire.Reply(up.id, error=(exc.code, exc.message), upcall=True))
        except Exception as exc:
            log.exception("upcall %s failed", up.method)
            err = InternalError(f"{up.method}: {exc!r}")
            frame = wire.encode(wire.Reply(up.id, error=(err.code, err.message), upcall=True))
        await conn.send(frame)

    async def _connect_retrying(self) -> _Connection:
        delays = self.policy.delays()
        attempt = 1
        while True:
            try:
                return await self._connect_once()
            except (*_CONNECTION_ERRORS, trio.TooSlowError) as exc:
                if _certificate_failure(exc):
                    raise RpcUnavailable(
                        f"TLS to {self.host}:{self.port}: certificate verification failed: "
                        f"{exc.__cause__}"
                    ) from exc
                delay = next(delays, None)
                if delay is None:
                    raise RpcUnavailable(
                        f"{self.host}:{self.port} unreachable after {attempt} attempts, "
                        f"last: {exc!r}"
                    ) from exc
                log.info(
                    "connect to %s:%d: %r; retry %d in %.3fs",
                    self.host,
                    self.port,
                    exc,
                    attempt,
                    delay,
                )
                await trio.sleep(delay)
                attempt += 1

    async def _connect_once(self) -> _Connection:
        with trio.fail_after(self.policy.connect_timeout):
            stream: trio.abc.Stream = await trio.open_tcp_stream(self.host, self.port)
            try:
                if self.ssl_context is not None:
                    stream = trio.SSLStream(
                        stream, self.ssl_context, server_hostname=self.server_hostname
                    )
                    await stream.do_handshake()
                conn = _Connection(stream, self.max_frame)
                await conn.writer.send_frame(wire.encode(wire.Hello(self.client_id)))
            except BaseException:
                await trio.aclose_forcefully(stream)
                raise
        return conn

    def _close(self) -> None:
        self._closed = True
        for call in list(self._pending.values()):
            call.finish(error=RpcUnavailable("client closed"))


def _certificate_failure(exc: BaseException) -> bool:
    return isinstance(exc, ssl.SSLCertVerificationError) or isinstance(
        exc.__cause__, ssl.SSLCertVerificationError
    )
