"""Azure lists names in UTF-16 code unit order; the storage contract promises UTF-8.

The two orders agree except between a character from U+E000 to U+FFFF and one
above U+FFFF, so `Lister` reorders only where names branch into such
characters, and pages from any name with one request thanks to the service's
`startFrom`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

# A run of names that UTF-16 and UTF-8 order differently is sorted in memory
# up to this size; longer runs are walked piece by piece with more requests.
SORT_IN_MEMORY = 1000
# Characters from U+E000 up: the only ones whose UTF-16 order differs from
# their code point (= UTF-8 byte) order, against each other.
_ABOVE_SURROGATES = re.compile("[\ue000-\U0010ffff]")
_FIRST_ASTRAL = "\U00010000"  # the least character whose UTF-16 form starts with a surrogate


class Lister:
    """Names after a given one, in UTF-8 byte order, from a UTF-16-ordered listing.

    Azure (and Azurite) list in UTF-16 code unit order. That equals UTF-8 byte
    (= code point) order except between a character from U+E000 to U+FFFF and
    one above U+FFFF (a surrogate pair), which UTF-16 puts first. So only where
    names branch into such characters does the listing need reordering: the
    names that start with some `p` followed by a character from U+E000 up form
    one contiguous "block" in both orders, which is sorted in memory when small
    and otherwise walked as its two halves (U+E000..U+FFFF first, then
    astral), recursively.

    `start_after` is honoured with the service's `startFrom` (inclusive; API
    version 2026-02-06), so resuming a listing at a name costs one request. A
    service that ignores startFrom still gets correct pages: names before the
    requested start are skipped, at the price of reading them.
    """

    def __init__(self, fetch: Callable[[str, str, int], Iterator[Any]], per_page: int) -> None:
        self._fetch = fetch  # fetch(prefix, start, per_page): items with .name, UTF-16 order
        self._per_page = per_page
        self.start_ignored = False  # whether the service listed names before startFrom

    def after(self, prefix: str, start_after: str | None) -> Iterator[Any]:
        if start_after is not None and not start_after.startswith(prefix):
            if _utf8(start_after) > _utf8(prefix):
                return  # every name under the prefix sorts before start_after
            start_after = None
        yield from self._range(prefix, prefix, None, len(prefix), start_after)

    def _range(
        self, prefix: str, lo: str, hi: str | None, depth: int, after: str | None
    ) -> Iterator[Any]:
        """Names in [lo, hi) of UTF-16 order that sort after `after`, in UTF-8 order.

        Within the range the two orders can differ only from character
        `depth` on; `after`, when given, lies in the range.
        """
        if after is None:
            yield from self._stream(prefix, lo, True, hi, depth)
            return
        special = _ABOVE_SURROGATES.search(after, depth)
        if special is None:
            yield from self._stream(prefix, after, False, hi, depth)
            return
        p = after[: special.start()]
        yield from self._block(p, after)
        rest = _past_prefix(p)
        if rest is not None and _below(rest, hi):
            yield from self._stream(prefix, rest, True, hi, depth)

    def _stream(
        self, prefix: str, start: str, inclusive: bool, hi: str | None, depth: int
    ) -> Iterator[Any]:
        """Like _range from `start`, reading the listing in order and sorting blocks."""
        while start is not None:
            big_block = None
            block: list[Any] = []
            p = ""
            for item in self._fetch(prefix, start, self._per_page):
                name = item.name
                if _utf16(name) < _utf16(start):
                    self.start_ignored = True
                    continue
                if not inclusive and name == start:
                    continue
                if block:
                    if _in_block(name, p):
                        block.append(item)
                        if len(block) > SORT_IN_MEMORY:
                            big_block = p
                            break
                        continue
                    yield from _sorted_utf8(block)
                    block = []
                if not _below(name, hi):
                    return
                special = _ABOVE_SURROGATES.search(name, depth)
                if special is None:
                    yield item
                else:
                    p, block = name[: special.start()], [item]
            else:
                yield from _sorted_utf8(block)
                return
            yield from self._halves(big_block, None)
            start, inclusive = _past_prefix(big_block), True
            if start is not None and not _below(start, hi):
                return

    def _block(self, p: str, after: str) -> Iterator[Any]:
        """The names of p's block that sort after `after`, in UTF-8 order."""
        found = self._fetch(p, p + _FIRST_ASTRAL, SORT_IN_MEMORY + 1)
        names = list(islice((i for i in found if _in_block(i.name, p)), SORT_IN_MEMORY + 1))
        if len(names) <= SORT_IN_MEMORY:
            key = _utf8(after)
            yield from _sorted_utf8(i for i in names if _utf8(i.name) > key)
        else:
            yield from self._halves(p, after)

    def _halves(self, p: str, after: str | None) -> Iterator[Any]:
        """p's block as U+E000..U+FFFF names, then astral ones (UTF-8 order)."""
        j = len(p)
        if after is None or ord(after[j]) <= 0xFFFF:
            yield from self._range(p, p + "\ue000", _past_prefix(p), j + 1, after)
            after = None  # all of the astral half sorts after it
        yield from self._range(p, p + _FIRST_ASTRAL, p + "\ue000", j + 1, after)


def _utf8(name: str) -> bytes:
    return name.encode("utf-8", "surrogatepass")


def _sorted_utf8(items: Iterable[Any]) -> list[Any]:
    return sorted(items, key=lambda i: _utf8(i.name))


def _utf16(name: str) -> bytes:
    return name.encode("utf-16-be", "surrogatepass")


def _below(name: str, hi: str | None) -> bool:
    return hi is None or _utf16(name) < _utf16(hi)


def _in_block(name: str, p: str) -> bool:
    return len(name) > len(p) and name.startswith(p) and ord(name[len(p)]) >= 0xE000


def _past_prefix(p: str) -> str | None:
    """The least name above every name that starts with `p`, in UTF-16 order."""
    while p:
        last = ord(p[-1])
        if last != 0xFFFF:  # U+FFFF is the greatest UTF-16 unit: carry into the previous one
            after = {0xD7FF: 0x10000, 0x10FFFF: 0xE000}.get(last, last + 1)
            return p[:-1] + chr(after)
        p = p[:-1]
    return None
