"""Every stored record: a msgpack body followed by a fixed 16-byte trailer.

    body | magic "OF" (2) | type (1) | version (1) | body length (4) | checksum (8)

The trailer is at the end so a reader that knows only where a record ends
(or its whole extent) can check it before trusting a byte of the body. The
checksum is BLAKE2b-64 of the body and the trailer's first 8 bytes, so a
record moved to another type or version also fails.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from typing import Any

import msgpack

from layout.errors import LayoutError

MAGIC = b"OF"
TRAILER = struct.Struct(">2sBBI8s")
TRAILER_SIZE = TRAILER.size  # 16


class RecordType(enum.IntEnum):
    CHECKPOINT = 1
    SUPERBLOCK = 2
    INODE_HEAD = 3
    BTREE_PAGE = 4
    BLOCK_SUMS = 5


def _checksum(body: bytes, header: bytes) -> bytes:
    h = hashlib.blake2b(body, digest_size=8)
    h.update(header)
    return h.digest()


def frame(kind: RecordType, version: int, payload: Any) -> bytes:
    """`payload` (msgpack-able) framed as a record of `kind` at `version`."""
    return frame_body(kind, version, msgpack.packb(payload, use_bin_type=True))


def frame_body(kind: RecordType, version: int, body: bytes) -> bytes:
    """Already-encoded `body` with its trailer (tests use it to frame any bytes)."""
    header = TRAILER.pack(MAGIC, kind, version, len(body), b"")[:8]
    return body + header + _checksum(body, header)


def unframe(data: bytes, kind: RecordType, versions: frozenset[int], where: str) -> tuple[int, Any]:
    """(version, payload) of a record of `kind`; LayoutError for anything else.

    Only the framing is checked here; the caller validates the payload's shape.
    """
    view = memoryview(data)
    if len(view) < TRAILER_SIZE:
        raise LayoutError(f"record of {len(view)} bytes is shorter than its trailer", where)
    magic, got_kind, version, length, checksum = TRAILER.unpack(view[-TRAILER_SIZE:])
    if magic != MAGIC:
        raise LayoutError("record trailer has no magic: not an objfs record", where)
    if length != len(view) - TRAILER_SIZE:
        raise LayoutError(
            f"record body is {len(view) - TRAILER_SIZE} bytes, trailer says {length}", where
        )
    body, header = view[:length], view[length : length + 8]
    if _checksum(body, header) != checksum:
        raise LayoutError("record checksum mismatch", where)
    if got_kind != kind:
        name = RecordType(got_kind).name if got_kind in RecordType._value2member_map_ else got_kind
        raise LayoutError(f"expected a {kind.name} record, found {name}", where)
    if version not in versions:
        raise LayoutError(f"unknown {kind.name} version {version}", where)
    try:
        payload = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types for bad bytes
        raise LayoutError(f"{kind.name} body is not valid msgpack: {exc}", where) from exc
    return version, payload
