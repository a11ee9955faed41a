"""Object names: a 64-bit object number as its 16 lowercase hex digits, reversed.

Numbers come from a counter, so consecutive objects differ in their low
digits. Both Swift (consistent hashing of the whole name) and Azure Blob
(range partitions keyed by name, split and load-balanced by prefix) spread
load best when consecutive names differ at the *front*: with the digits
reversed, a writer creating objects n, n+1, ... cycles through 16 first
characters and 256 two-character prefixes, instead of hammering one Azure
range with names sharing a long common prefix. Fixed width keeps the mapping
one-to-one: every number has exactly one name and every name one number.

Object 0 ("0000000000000000") is the checkpoint backup, the only object
ever rewritten; it is a valid name like any other.
"""

from __future__ import annotations

from layout.codec import MAX_U64
from layout.errors import LayoutError

NAME_LENGTH = 16
_HEX_DIGITS = frozenset("0123456789abcdef")


def object_name(number: int) -> str:
    """The name of object `number` (0 <= number < 2**64)."""
    if type(number) is not int or not 0 <= number <= MAX_U64:
        raise ValueError(f"object number must be an integer in [0, 2**64), got {number!r:.40}")
    return f"{number:016x}"[::-1]


def object_number(name: str) -> int:
    """The number named by `name`; LayoutError (a ValueError) for any other string.

    Strict on purpose: a listing of the container may hold foreign objects,
    and fsck must not mistake "ABC" or " 1" for one of ours.
    """
    if type(name) is not str or len(name) != NAME_LENGTH or not _HEX_DIGITS.issuperset(name):
        raise LayoutError(f"{name!r:.40} is not an object name (16 lowercase hex digits)")
    return int(name[::-1], 16)
