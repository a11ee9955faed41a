"""How keys and values become msgpack-able wire values and back, with checks.

A decoder gets whatever msgpack produced from bytes that passed their
checksum, which may still be the wrong shape (a bug, or a newer writer);
it raises LayoutError naming `where` instead of any other exception.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from layout.errors import LayoutError

T = TypeVar("T")

MAX_U64 = (1 << 64) - 1

# repr() of a wire value that msgpack nested ~1000 deep raises RecursionError,
# and of a huge list costs time; error messages show a bounded sketch instead.
_SHOW = reprlib.Repr()
_SHOW.maxlevel = 3
_SHOW.maxstring = _SHOW.maxother = 40


def show(wire: Any) -> str:
    """A short, always-safe description of a wire value for error messages."""
    return _SHOW.repr(wire)[:60]


class Codec(Protocol[T]):
    def encode(self, value: T) -> Any: ...

    def decode(self, wire: Any, where: str) -> T: ...


def expect_int(wire: Any, where: str, what: str, low: int = 0, high: int = MAX_U64) -> int:
    if type(wire) is not int or not low <= wire <= high:
        raise LayoutError(f"{what} must be an integer in [{low}, {high}], got {show(wire)}", where)
    return wire


def expect_bytes(wire: Any, where: str, what: str, max_len: int | None = None) -> bytes:
    if type(wire) is not bytes or (max_len is not None and len(wire) > max_len):
        raise LayoutError(f"{what} must be bytes (at most {max_len}), got {show(wire)}", where)
    return wire


def expect_list(wire: Any, where: str, what: str, length: int | None = None) -> list:
    if type(wire) is not list or (length is not None and len(wire) != length):
        raise LayoutError(f"{what} must be a list of {length} items, got {show(wire)}", where)
    return wire


class IntCodec:
    """Unsigned 64-bit integers: inode numbers, file offsets."""

    def encode(self, value: int) -> int:
        return value

    def decode(self, wire: Any, where: str) -> int:
        return expect_int(wire, where, "key")


class BytesCodec:
    """Byte strings: directory entry names."""

    def encode(self, value: bytes) -> bytes:
        return value

    def decode(self, wire: Any, where: str) -> bytes:
        return expect_bytes(wire, where, "key")


@dataclass(frozen=True, slots=True)
class Location:
    """Where a record is: a byte range of one object (by its 64-bit number)."""

    object: int
    offset: int
    length: int

    def to_wire(self) -> list[int]:
        return [self.object, self.offset, self.length]

    @classmethod
    def from_wire(cls, wire: Any, where: str) -> Location:
        obj, offset, length = expect_list(wire, where, "location", 3)
        return cls(
            expect_int(obj, where, "object number"),
            expect_int(offset, where, "offset"),
            expect_int(length, where, "length", 1),
        )

    def __str__(self) -> str:
        # The object's stored name (layout.naming.object_name), findable in the container.
        return f"object {f'{self.object:016x}'[::-1]} at {self.offset}+{self.length}"
