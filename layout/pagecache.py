"""A byte-bounded LRU of decoded, clean B+tree pages, keyed by their Location.

Stored objects never change, so a Location names one page forever: every
tree that reaches a page by the same Location can share the decoded copy,
whatever root it was opened at. The entries are read-only by contract; a
tree that wants to modify one copies it first (see layout.btree).

The bound counts the encoded size of each page (its Location's length), not
Python's in-memory size, which is a few times larger but proportional.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from layout.codec import Location

logger = logging.getLogger(__name__)


class PageCache:
    """Up to `max_bytes` of encoded pages; the least recently used go first."""

    __slots__ = ("max_bytes", "nbytes", "hits", "misses", "evictions", "_pages")

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"cache bound must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self._pages: OrderedDict[Location, Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pages)

    def __contains__(self, location: Location) -> bool:
        return location in self._pages

    def get(self, location: Location) -> Any:
        """The page at `location`, or None; a hit makes it the most recent."""
        pages = self._pages
        page = pages.get(location)
        if page is None:
            self.misses += 1
        else:
            self.hits += 1
            pages.move_to_end(location)
        return page

    def add(self, location: Location, page: Any) -> None:
        """Keep `page` (clean, never to be modified again) under `location`."""
        size = location.length
        if size > self.max_bytes:
            return  # would evict everything and still not fit
        pages = self._pages
        if location in pages:
            pages.move_to_end(location)
            return
        pages[location] = page
        self.nbytes += size
        while self.nbytes > self.max_bytes:
            old, _ = pages.popitem(last=False)
            self.nbytes -= old.length
            self.evictions += 1

    def clear(self) -> None:
        self._pages.clear()
        self.nbytes = 0
