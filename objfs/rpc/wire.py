"""Wire format of the retry RPC: length-prefixed msgpack frames over a byte stream.

A frame is a 4-byte big-endian unsigned length followed by that many bytes of
one msgpack value. Frames above the receiver's limit (16 MiB by default) are a
protocol error, detected from the prefix alone, before any body is read.

Every message is a msgpack map with a kind under "k":

    hello         {"k": "hello", "v": 1, "c": client_id}        client -> server, first frame
    request       {"k": "req", "c": client_id, "i": request_id, "m": method, "a": args,
                   "ack": n}                                     client -> server
    reply         {"k": "rep", "i": request_id, "r": result}     server -> client
                  {"k": "rep", "i": request_id, "e": [code, message]}
    upcall        {"k": "up", "i": upcall_id, "m": method, "a": args}   server -> client
    upcall reply  {"k": "uprep", "i": upcall_id, "r": result}    client -> server
                  {"k": "uprep", "i": upcall_id, "e": [code, message]}

Ids are integers in [0, 2**63). Request ids grow by one per call of a client;
"ack" is the lowest request id whose reply the client still waits for (or its
next id when it waits for none): the client holds every reply below it, so the
server may forget them. args and result are any msgpack value.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import msgpack
import trio

from objfs.rpc.errors import FrameTooLarge, ProtocolError

VERSION = 1
DEFAULT_MAX_FRAME = 16 * 1024 * 1024
MAX_ID = 2**63
MAX_NAME = 1024  # longest client id or method name accepted
_HEADER = struct.Struct(">I")


@dataclass(frozen=True)
class Hello:
    client: str


@dataclass(frozen=True)
class Request:
    client: str
    id: int
    method: str
    args: Any
    ack: int


@dataclass(frozen=True)
class Reply:
    """A reply to a request (upcall=False) or to an upcall (upcall=True)."""

    id: int
    result: Any = None
    error: tuple[str, str] | None = None
    upcall: bool = False


@dataclass(frozen=True)
class Upcall:
    id: int
    method: str
    args: Any


Message = Hello | Request | Reply | Upcall


def to_obj(msg: Message) -> dict[str, Any]:
    """The msgpack map for a message."""
    if isinstance(msg, Hello):
        return {"k": "hello", "v": VERSION, "c": msg.client}
    if isinstance(msg, Request):
        return {
            "k": "req",
            "c": msg.client,
            "i": msg.id,
            "m": msg.method,
            "a": msg.args,
            "ack": msg.ack,
        }
    if isinstance(msg, Upcall):
        return {"k": "up", "i": msg.id, "m": msg.method, "a": msg.args}
    obj: dict[str, Any] = {"k": "uprep" if msg.upcall else "rep", "i": msg.id}
    if msg.error is None:
        obj["r"] = msg.result
    else:
        obj["e"] = list(msg.error)
    return obj


def encode(msg: Message, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """One frame. Raises TypeError for values msgpack cannot carry, FrameTooLarge."""
    body = msgpack.packb(to_obj(msg), use_bin_type=True)
    if len(body) > max_frame:
        raise FrameTooLarge(f"frame of {len(body)} bytes exceeds the limit of {max_frame}")
    return _HEADER.pack(len(body)) + body


def decode(body: bytes) -> Message:
    """The message in a frame body; ProtocolError if it is not one."""
    try:
        obj = msgpack.unpackb(body, raw=False)
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise ProtocolError(f"body is not msgpack: {exc!r}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError(f"message is a {type(obj).__name__}, not a map")
    try:
        return _parse(obj)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"malformed {obj.get('k')!r} message: {exc!r}") from exc


def _parse(obj: dict[Any, Any]) -> Message:
    kind = obj["k"]
    if kind == "req":
        return Request(_name(obj["c"]), _id(obj["i"]), _name(obj["m"]), obj["a"], _id(obj["ack"]))
    if kind in ("rep", "uprep"):
        return _parse_reply(obj, upcall=kind == "uprep")
    if kind == "up":
        return Upcall(_id(obj["i"]), _name(obj["m"]), obj["a"])
    if kind == "hello":
        if obj["v"] != VERSION:
            raise ValueError(f"protocol version {obj['v']!r}, expected {VERSION}")
        return Hello(_name(obj["c"]))
    raise ValueError(f"unknown kind {kind!r}")


def _parse_reply(obj: dict[Any, Any], upcall: bool) -> Reply:
    if ("r" in obj) == ("e" in obj):
        raise ValueError("a reply needs exactly one of result and error")
    if "r" in obj:
        return Reply(_id(obj["i"]), obj["r"], upcall=upcall)
    err = obj["e"]
    if not (isinstance(err, list) and len(err) == 2 and all(isinstance(s, str) for s in err)):
        raise ValueError("error must be [code, message]")
    return Reply(_id(obj["i"]), error=(err[0], err[1]), upcall=upcall)


def _id(value: Any) -> int:
    if type(value) is not int or not 0 <= value < MAX_ID:
        raise ValueError(f"bad id {value!r}")
    return value


def _name(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
        raise ValueError(f"bad name {value!r}")
    return value


class FrameReader:
    """Reads whole frames from a trio stream, enforcing the size limit."""

    def __init__(self, stream: trio.abc.ReceiveStream, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._stream = stream
        self._max_frame = max_frame
        self._buf = bytearray()

    async def receive(self) -> Message | None:
        """The next message; None at end of stream between frames.

        Raises ProtocolError for a bad frame, trio.BrokenResourceError when the
        stream ends inside a frame (a cut connection, not the peer's fault).
        """
        if not await self._fill(_HEADER.size, allow_eof=True):
            return None
        (length,) = _HEADER.unpack_from(self._buf)
        if length > self._max_frame:
            raise FrameTooLarge(f"peer announced a {length}-byte frame (limit {self._max_frame})")
        await self._fill(_HEADER.size + length, allow_eof=False)
        body = bytes(self._buf[_HEADER.size : _HEADER.size + length])
        del self._buf[: _HEADER.size + length]
        return decode(body)

    async def _fill(self, size: int, allow_eof: bool) -> bool:
        while len(self._buf) < size:
            chunk = await self._stream.receive_some(max(65536, size - len(self._buf)))
            if not chunk:
                if allow_eof and not self._buf:
                    return False
                raise trio.BrokenResourceError("connection closed inside a frame")
            self._buf += chunk
        return True


class FrameWriter:
    """Sends frames on a trio stream; safe to share between tasks."""

    def __init__(self, stream: trio.abc.SendStream) -> None:
        self._stream = stream
        self._lock = trio.Lock()

    async def send_frame(self, frame: bytes) -> None:
        async with self._lock:
            await self._stream.send_all(frame)
