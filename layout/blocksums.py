"""The digest table at the end of every segment object: data checked block by block.

Framed records carry their own checksum, but file data extents do not, so
every object written from a `layout.segment.Segment` ends with the xxh3_64
digest of each BLOCK_SIZE block of the bytes before it (the last block may be
shorter) and a fixed footer that says how long the table is::

    covered bytes | table: BLOCK_SUMS record (version 1) | magic "OFBS" (4) | table length (4)

    table payload [block_size u32, covered u64, digests bin (8 bytes per block, big-endian)]

A reader that knows the object's size fetches its last TAIL_GUESS bytes, finds
the table through the footer, and can then check any block-aligned range it
reads. The table's own record checksum covers the digests; the footer is
checked by the table it must point at.
"""

from __future__ import annotations

import struct

import xxhash

from layout.codec import expect_bytes, expect_int, expect_list
from layout.errors import LayoutError
from layout.framing import RecordType, frame, unframe

BLOCK_SIZE: int = 64 * 1024
# Bytes of the tail a reader fetches first: the whole table of objects up to 511 MiB.
TAIL_GUESS: int = 64 * 1024

VERSION = 1
_READS = frozenset({VERSION})
FOOTER = struct.Struct(">4sI")
FOOTER_MAGIC = b"OFBS"
DIGEST_SIZE = 8
_TABLE_SLACK = 64  # a table's bytes beyond its digests: msgpack header and record trailer

_digest = xxhash.xxh3_64_digest  # 8 bytes, big-endian


class NeedMore(LayoutError):
    """The tail given is too short for the table: fetch the last `n` bytes instead."""

    def __init__(self, n: int, where: str | None = None) -> None:
        self.n = n
        super().__init__(f"the digest table needs the last {n} bytes", where)


def _blocks(length: int) -> range:
    return range(0, length, BLOCK_SIZE)


def table(data: bytes | bytearray | memoryview) -> bytes:
    """The bytes to append to `data` when its segment is sealed: the digests and the footer."""
    with memoryview(data) as view:
        covered = view.nbytes
        digests = b"".join(_digest(view[start : start + BLOCK_SIZE]) for start in _blocks(covered))
    framed = frame(RecordType.BLOCK_SUMS, VERSION, [BLOCK_SIZE, covered, digests])
    return framed + FOOTER.pack(FOOTER_MAGIC, len(framed))


class BlockSums:
    """The digests of one object, as read back from its tail."""

    __slots__ = ("covered", "_digests")

    def __init__(self, covered: int, digests: bytes) -> None:
        self.covered = covered
        self._digests = digests

    @classmethod
    def from_tail(cls, tail: bytes, object_size: int, where: str) -> BlockSums:
        """From the object's last len(tail) bytes.

        LayoutError (naming `where`) if the footer or table is damaged; `NeedMore(n)` (a
        LayoutError subclass carrying n) if the tail is too short.
        """
        if len(tail) > object_size:
            raise ValueError(f"a tail of {len(tail)} bytes of an object of {object_size}")
        footer_at = object_size - FOOTER.size
        if len(tail) < FOOTER.size:
            if object_size < FOOTER.size:
                raise LayoutError(f"object of {object_size} bytes has no digest table", where)
            raise NeedMore(FOOTER.size, where)
        magic, length = FOOTER.unpack(tail[-FOOTER.size :])
        if magic != FOOTER_MAGIC:
            raise LayoutError(f"no digest table footer at offset {footer_at}", where)
        most = DIGEST_SIZE * len(_blocks(object_size)) + _TABLE_SLACK
        if length > min(footer_at, most):
            raise LayoutError(f"digest table footer at {footer_at} says {length} bytes", where)
        needed = length + FOOTER.size
        if len(tail) < needed:
            raise NeedMore(needed, where)
        at = f"digest table at offset {footer_at - length}, {where}"
        _, payload = unframe(tail[-needed : -FOOTER.size], RecordType.BLOCK_SUMS, _READS, at)
        block, covered, digests = expect_list(payload, at, "digest table", 3)
        if expect_int(block, at, "block size") != BLOCK_SIZE:
            raise LayoutError(f"digest table of {block}-byte blocks, not {BLOCK_SIZE}", at)
        if expect_int(covered, at, "covered bytes") != footer_at - length:
            raise LayoutError(f"digest table covers {covered} bytes, not {footer_at - length}", at)
        count = len(_blocks(covered))
        digests = expect_bytes(digests, at, "digests")
        if len(digests) != DIGEST_SIZE * count:
            raise LayoutError(f"digest table has {len(digests)} bytes for {count} blocks", at)
        return cls(covered, digests)

    def bad_blocks(self, offset: int, data: bytes | memoryview) -> list[int]:
        """The offsets of the blocks within `data` that do not match (for fsck)."""
        with memoryview(data) as view:
            length = view.nbytes
            end = offset + length
            if offset % BLOCK_SIZE or offset < 0 or end > self.covered:
                raise ValueError(f"{offset}+{length} is not a block run of {self.covered} bytes")
            if length % BLOCK_SIZE and end != self.covered:
                raise ValueError(f"{offset}+{length} ends inside a block")
            digests = self._digests
            bad = []
            for start in _blocks(length):
                at = (offset + start) // BLOCK_SIZE * DIGEST_SIZE
                if _digest(view[start : start + BLOCK_SIZE]) != digests[at : at + DIGEST_SIZE]:
                    bad.append(offset + start)
            return bad

    def check(self, offset: int, data: bytes | memoryview, where: str) -> None:
        """`data` starts at `offset` (a multiple of BLOCK_SIZE) and spans whole blocks (the last may
        end at `covered`). LayoutError naming `where` and the offset of the first bad block."""
        try:
            bad = self.bad_blocks(offset, data)
        except ValueError as exc:  # a short read, most likely
            raise LayoutError(f"cannot check bytes {exc}", where) from None
        if bad:
            raise mismatch(bad[0], where)


def mismatch(offset: int, where: str) -> LayoutError:
    """The error for a block at `offset` (of the object `where` names) that fails its digest."""
    return LayoutError(f"data block at offset {offset} fails its checksum", where)
