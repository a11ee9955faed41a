"""A generic, pageable, copy-on-write B+tree over immutable stored pages.

One implementation serves the inode table (int -> location), every directory
(name -> entry) and every file's extent map (offset -> extent). The tree does
no I/O of its own: pages come in through a `PageReader` and go out through a
`SegmentWriter`, both supplied by the caller.

Page format
-----------
Each page is one framed record (layout.framing, type BTREE_PAGE, version 1)
whose msgpack body is

    [level, count, keys, values]

- `level` is 0 for a leaf and grows by one per level towards the root.
- `count` is the number of entries in the whole tree on the root page, nil on
  every other page, so `count()` is O(1) without per-child counts.
- `keys` are the key codec's wire values in strictly increasing order.
- in a leaf, `values` are the value codec's wire values, one per key; in an
  interior page, `values` are child locations ([object, offset, length]),
  one more than `keys`: child i holds the keys k with keys[i-1] <= k < keys[i].

Sizing: every page's encoded size is tracked incrementally as the sum of its
entries' msgpack sizes (a child reference counts as the largest possible
location, CHILD_BYTES) plus PAGE_OVERHEAD, an upper bound for the headers and
the framing trailer; so the estimate never undershoots. A page splits, at its
byte midpoint, when the estimate exceeds `page_bytes`; a non-root page that
falls below half is merged with a sibling, or the two are split evenly again
when together they do not fit. Entries should be well below page_bytes / 4;
an entry larger than a page simply gets a page of its own.

Copy-on-write, flush and accounting
-----------------------------------
- A page reached through a Location is *clean*: it may be shared with other
  trees through the PageCache and is never modified. The first change to it
  replaces it by a private copy, a *dirty* page, held by direct reference from
  its (dirty) parent, so dirty pages are pinned in memory until flushed.
- At that copy, the clean page's old Location is *released*: this tree no
  longer refers to those bytes (whatever snapshot still might is not its
  business); `released` counts bytes per object number.
- `flush(writer)` encodes the dirty pages children first, so each parent
  records its children's new Locations, appends each to the writer, moves the
  now clean pages into the cache under their new Location, and returns the new
  root with the bytes released since the previous flush. Hence, for one tree:
  bytes ever appended == bytes referenced by the current root + bytes released.
- An empty tree flushes to root None.

Concurrency: readers (get, items, first, last, count) may run concurrently
with each other and with one writer. Clean pages never change, so a reader
that waited for a load holds a consistent older copy of that subtree; still,
if the tree changed meanwhile it starts its descent again rather than mix
that copy with dirty pages the writer has reshaped. Writers (put, delete,
flush) must be serialized by the caller; overlapping writers raise
RuntimeError rather than corrupt the tree.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgpack

from layout.codec import Codec, Location
from layout.errors import LayoutError
from layout.framing import RecordType, frame, unframe
from layout.pagecache import PageCache

logger = logging.getLogger(__name__)

PAGE_VERSION = 1
PAGE_VERSIONS = frozenset({PAGE_VERSION})
# msgpack of [u64, u64, u64]: the most a child reference can take in a page.
CHILD_BYTES = 28
# Outer array, level, count (nil or u64), two array headers, framing trailer.
PAGE_OVERHEAD = 1 + 1 + 9 + 5 + 5 + 16
MAX_LEVEL = 32
MIN_PAGE_BYTES = 128

_pack = msgpack.Packer(use_bin_type=True).pack


class PageReader(Protocol):
    async def read(self, location: Location) -> bytes: ...


class SegmentWriter(Protocol):
    def append(self, data: bytes) -> Location: ...


@dataclass
class FlushResult:
    root: Location | None
    released: dict[int, int] = field(default_factory=dict)


class _Page:
    """One decoded page. `vals` holds values (leaf) or child refs (interior).

    A child ref is a Location (clean child) or a _Page (dirty child). `sizes`
    holds each entry's encoded size and exists only while the page is dirty;
    for an interior page, entry i is child i plus the separator before it.
    """

    __slots__ = ("level", "count", "keys", "vals", "sizes", "nbytes", "dirty")

    def __init__(self, level: int, keys: list, vals: list, sizes: list[int] | None) -> None:
        self.level = level
        self.count: int | None = None
        self.keys = keys
        self.vals = vals
        self.sizes = sizes
        self.nbytes = PAGE_OVERHEAD + sum(sizes) if sizes is not None else 0
        self.dirty = sizes is not None


class BTree:
    """An ordered map stored as copy-on-write pages; see the module docstring."""

    def __init__(
        self,
        root: Location | None,
        reader: PageReader,
        key_codec: Codec,
        value_codec: Codec,
        *,
        cache: PageCache,
        page_bytes: int = 8192,
    ) -> None:
        if page_bytes < MIN_PAGE_BYTES:
            raise ValueError(f"page_bytes must be >= {MIN_PAGE_BYTES}, got {page_bytes}")
        self._root: Location | _Page | None = root
        self._reader = reader
        self._kc = key_codec
        self._vc = value_codec
        self._cache = cache
        self._page_bytes = page_bytes
        self._len: int | None = 0 if root is None else None
        self._released: dict[int, int] = {}
        # Bumped by every change of the tree's shape or contents; a reader that
        # awaited a page load checks it to know whether its path is stale.
        self._gen = 0
        self._writing = False

    @property
    def root(self) -> Location | None:
        """The root as last flushed (or opened); None while it is dirty or empty."""
        return self._root if type(self._root) is Location else None

    @property
    def dirty(self) -> bool:
        return type(self._root) is _Page

    # ----------------------------------------------------------------- loading

    async def _load(self, location: Location, level: int | None) -> _Page:
        page = self._cache.get(location)
        if page is None:
            data = await self._reader.read(location)
            page = self._decode(data, location)
            self._cache.add(location, page)
        if level is not None and page.level != level:
            raise LayoutError(
                f"B+tree page has level {page.level}, its parent expects {level}",
                f"B+tree page in {location}",
            )
        return page

    def _decode(self, data: bytes, location: Location) -> _Page:
        where = f"B+tree page in {location}"
        if len(data) != location.length:
            raise LayoutError(f"read {len(data)} bytes, expected {location.length}", where)
        _, payload = unframe(data, RecordType.BTREE_PAGE, PAGE_VERSIONS, where)
        if type(payload) is not list or len(payload) != 4:
            raise LayoutError("B+tree page is not [level, count, keys, values]", where)
        level, count, wkeys, wvals = payload
        if type(level) is not int or not 0 <= level <= MAX_LEVEL:
            raise LayoutError(f"bad B+tree page level {level!r:.40}", where)
        if count is not None and (type(count) is not int or count < 0):
            raise LayoutError(f"bad B+tree entry count {count!r:.40}", where)
        if type(wkeys) is not list or type(wvals) is not list:
            raise LayoutError("B+tree page keys and values must be lists", where)
        if len(wvals) != len(wkeys) + (1 if level else 0):
            raise LayoutError(f"{len(wkeys)} keys but {len(wvals)} values/children", where)
        try:
            kd, vd = self._kc.decode, self._vc.decode
            keys = [kd(w, where) for w in wkeys]
            if level:
                vals = [Location.from_wire(w, where) for w in wvals]
            else:
                vals = [vd(w, where) for w in wvals]
            ordered = all(a < b for a, b in zip(keys, keys[1:], strict=False))
        except LayoutError:
            raise
        except Exception as exc:  # a codec or a comparison choking on odd input
            raise LayoutError(f"undecodable B+tree page: {exc!r:.80}", where) from exc
        if not ordered:
            raise LayoutError("B+tree page keys are not strictly increasing", where)
        page = _Page(level, keys, vals, None)
        page.count = count
        return page

    async def _root_page(self) -> _Page | None:
        root = self._root
        if type(root) is _Page or root is None:
            return root
        page = self._cache.get(root)
        if page is None:
            page = await self._load(root, None)
        if self._len is None:
            if page.count is None:
                raise LayoutError("B+tree root page has no entry count", f"B+tree page in {root}")
            self._len = page.count
        return page

    async def _leaf_for(self, key: Any) -> _Page | None:
        """The leaf whose range holds `key`, descending again if the tree changed."""
        cache_get = self._cache.get
        while True:
            gen = self._gen
            page = await self._root_page()
            if page is None:
                return None
            while page.level:
                ref = page.vals[bisect_right(page.keys, key)]
                if type(ref) is _Page:
                    page = ref
                    continue
                child = cache_get(ref)
                if child is None:
                    child = await self._load(ref, page.level - 1)
                    if gen != self._gen:
                        break
                page = child
            else:
                return page

    # ------------------------------------------------------------------ reading

    async def get(self, key: Any, default: Any = None) -> Any:
        leaf = await self._leaf_for(key)
        if leaf is None:
            return default
        keys = leaf.keys
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            return leaf.vals[i]
        return default

    async def count(self) -> int:
        if self._len is None:
            await self._root_page()
        assert self._len is not None
        return self._len

    async def items(self, start: Any = None) -> AsyncIterator[tuple[Any, Any]]:
        """(key, value) in key order from the first key >= start.

        Each leaf is copied before its entries are yielded and the next leaf is
        found from the root by key, so changes made while iterating never
        break the iteration: every key comes at most once and in order.
        """
        lo = start
        while True:
            leaf, bound = await self._leaf_and_bound(lo)
            if leaf is None:
                return
            keys, vals = leaf.keys, leaf.vals
            j = 0 if lo is None else bisect_left(keys, lo)
            for kv in zip(keys[j:], vals[j:], strict=True):
                yield kv
            if bound is None:
                return
            lo = bound

    async def _leaf_and_bound(self, lo: Any) -> tuple[_Page | None, Any]:
        """The leaf for `lo` (None: the first) and the lowest key of the next leaf."""
        while True:
            gen = self._gen
            page = await self._root_page()
            if page is None:
                return None, None
            bound = None
            while page.level:
                seps = page.keys
                i = 0 if lo is None else bisect_right(seps, lo)
                if i < len(seps):
                    bound = seps[i]
                ref = page.vals[i]
                if type(ref) is not _Page:
                    ref = self._cache.get(ref) or await self._load(ref, page.level - 1)
                    if gen != self._gen:
                        break
                page = ref
            else:
                return page, bound

    async def first(self) -> tuple[Any, Any] | None:
        async with aclosing(self.items()) as entries:
            async for kv in entries:
                return kv
        return None

    async def last(self) -> tuple[Any, Any] | None:
        while True:
            gen = self._gen
            page = await self._root_page()
            if page is None:
                return None
            while page.level:
                ref = page.vals[-1]
                if type(ref) is not _Page:
                    ref = self._cache.get(ref) or await self._load(ref, page.level - 1)
                    if gen != self._gen:
                        break
                page = ref
            else:
                if page.keys or page is await self._root_page():
                    return (page.keys[-1], page.vals[-1]) if page.keys else None
                # An empty non-root leaf is left only when a merge could not
                # read its sibling; rare enough to answer by a full scan.
                found = None
                async for found in self.items():  # noqa: B007
                    pass
                return found

    async def floor(self, key: Any) -> tuple[Any, Any] | None:
        """The entry with the greatest key <= `key`, or None (a file's extent at an offset)."""
        while True:
            gen = self._gen
            page = await self._root_page()
            if page is None:
                return None
            lefts: list[tuple[_Page, int]] = []  # subtrees left of the path, deepest last
            while page.level:
                i = bisect_right(page.keys, key)
                if i:
                    lefts.append((page, i - 1))
                page = await self._child(page, i)
                if gen != self._gen:
                    break
            else:
                i = bisect_right(page.keys, key)
                if i:
                    return page.keys[i - 1], page.vals[i - 1]
                found = await self._rightmost_of(lefts)
                if gen == self._gen:
                    return found

    async def _child(self, page: _Page, i: int) -> _Page:
        ref = page.vals[i]
        if type(ref) is _Page:
            return ref
        return self._cache.get(ref) or await self._load(ref, page.level - 1)

    async def _rightmost_of(self, lefts: list[tuple[_Page, int]]) -> tuple[Any, Any] | None:
        """The last entry of the deepest non-empty subtree among `lefts`."""
        while lefts:
            page, i = lefts.pop()
            page = await self._child(page, i)
            while page.level:
                page = await self._child(page, len(page.vals) - 1)
            if page.keys:
                return page.keys[-1], page.vals[-1]
        return None

    async def page_locations(self) -> AsyncIterator[tuple[int, Location]]:
        """(level, Location) of every stored page the current tree refers to.

        Leaves are not read (their parents name them). Dirty pages have no
        Location yet and are descended into without being reported; after a
        flush, this is the complete set of bytes the tree references.
        """
        root = await self._root_page()
        if root is None:
            return
        stack: list[tuple[int, Location | _Page]] = [(root.level, self._root)]
        while stack:
            level, ref = stack.pop()
            if type(ref) is not _Page:
                yield level, ref
                if level == 0:
                    continue  # a leaf is known by its parent's reference: no read
                ref = self._cache.get(ref) or await self._load(ref, level)
            if level:
                stack.extend((level - 1, child) for child in reversed(ref.vals))

    # ------------------------------------------------------------------ writing

    def _start_write(self) -> int:
        if self._writing:
            raise RuntimeError("concurrent writers on one BTree: serialize put/delete/flush")
        self._writing = True
        return self._gen

    def _check_gen(self, gen: int) -> None:
        if gen != self._gen:
            raise RuntimeError("BTree changed under a writer")

    async def _descend(self, key: Any) -> tuple[list[_Page], list[int]]:
        """Pages from the root to the leaf for `key`, and the child index taken at each."""
        page = await self._root_page()
        if page is None:
            return [], []
        pages = [page]
        idxs: list[int] = []
        cache_get = self._cache.get
        while page.level:
            i = bisect_right(page.keys, key)
            ref = page.vals[i]
            if type(ref) is not _Page:
                ref = cache_get(ref) or await self._load(ref, page.level - 1)
            idxs.append(i)
            pages.append(ref)
            page = ref
        return pages, idxs

    def _own_path(self, pages: list[_Page], idxs: list[int]) -> None:
        """Replace the clean pages on the path by private copies (top-down)."""
        if not pages:
            self._root = _Page(0, [], [], [])
            self._len = 0
            pages.append(self._root)
            return
        for k, page in enumerate(pages):
            if page.dirty:
                continue
            copy = self._copy(page)
            pages[k] = copy
            if k == 0:
                self._release(self._root)
                self._root = copy
            else:
                parent_vals = pages[k - 1].vals
                self._release(parent_vals[idxs[k - 1]])
                parent_vals[idxs[k - 1]] = copy

    def _copy(self, page: _Page) -> _Page:
        """A dirty copy of a clean page, with its entry sizes worked out."""
        pack, ke = _pack, self._kc.encode
        keys = page.keys
        if page.level:
            sizes = [CHILD_BYTES] + [CHILD_BYTES + len(pack(ke(k))) for k in keys]
        else:
            ve = self._vc.encode
            sizes = [
                len(pack(ke(k))) + len(pack(ve(v))) for k, v in zip(keys, page.vals, strict=True)
            ]
        return _Page(page.level, keys[:], page.vals[:], sizes)

    def _release(self, location: Location) -> None:
        released = self._released
        released[location.object] = released.get(location.object, 0) + location.length

    async def put(self, key: Any, value: Any) -> None:
        size = len(_pack(self._kc.encode(key))) + len(_pack(self._vc.encode(value)))
        gen = self._start_write()
        try:
            pages, idxs = await self._descend(key)
            self._check_gen(gen)
            self._own_path(pages, idxs)
            leaf = pages[-1]
            keys, sizes = leaf.keys, leaf.sizes
            i = bisect_left(keys, key)
            if i < len(keys) and keys[i] == key:
                leaf.vals[i] = value
                leaf.nbytes += size - sizes[i]
                sizes[i] = size
            else:
                keys.insert(i, key)
                leaf.vals.insert(i, value)
                sizes.insert(i, size)
                leaf.nbytes += size
                self._len += 1
            if leaf.nbytes > self._page_bytes and len(keys) > 1:
                self._split_up(pages, idxs)
            self._gen += 1
        finally:
            self._writing = False

    def _split_up(self, pages: list[_Page], idxs: list[int]) -> None:
        """Split the last page of the path, and its ancestors while they overflow."""
        limit = self._page_bytes
        k = len(pages) - 1
        page = pages[k]
        while page.nbytes > limit and len(page.sizes) > 1:
            right, sep, sep_size = self._split(page)
            if k == 0:
                sizes = [CHILD_BYTES, CHILD_BYTES + sep_size]
                self._root = _Page(page.level + 1, [sep], [page, right], sizes)
                return
            parent, i = pages[k - 1], idxs[k - 1]
            parent.keys.insert(i, sep)
            parent.vals.insert(i + 1, right)
            parent.sizes.insert(i + 1, CHILD_BYTES + sep_size)
            parent.nbytes += CHILD_BYTES + sep_size
            k -= 1
            page = parent

    @staticmethod
    def _set_child_size(page: _Page, i: int, size: int) -> None:
        page.nbytes += size - page.sizes[i]
        page.sizes[i] = size

    def _split(self, page: _Page) -> tuple[_Page, Any, int]:
        """Move the upper half (by bytes) of `page` to a new right sibling.

        Returns the sibling, the separator key for the parent and its size.
        """
        sizes = page.sizes
        half = (page.nbytes - PAGE_OVERHEAD) // 2
        acc = 0
        m = 0
        while m < len(sizes) - 1:
            acc += sizes[m]
            m += 1
            if acc >= half:
                break
        # Keep two children on each side of an interior split when there are enough.
        low = 2 if page.level and len(sizes) >= 4 else 1
        m = min(max(m, low), len(sizes) - low)
        keys, vals = page.keys, page.vals
        if page.level == 0:
            sep = keys[m]
            sep_size = len(_pack(self._kc.encode(sep)))
            right = _Page(0, keys[m:], vals[m:], sizes[m:])
            del keys[m:], vals[m:], sizes[m:]
        else:
            # Child m moves right; the separator before it goes up to the parent.
            sep = keys[m - 1]
            sep_size = sizes[m] - CHILD_BYTES
            right = _Page(page.level, keys[m:], vals[m:], [CHILD_BYTES] + sizes[m + 1 :])
            del keys[m - 1 :], vals[m:], sizes[m:]
        page.nbytes = PAGE_OVERHEAD + sum(sizes)
        return right, sep, sep_size

    async def delete(self, key: Any) -> bool:
        """Remove `key`; False (and nothing rewritten) if it was not there."""
        gen = self._start_write()
        try:
            pages, idxs = await self._descend(key)
            self._check_gen(gen)
            if not pages:
                return False
            keys = pages[-1].keys
            i = bisect_left(keys, key)
            if i == len(keys) or keys[i] != key:
                return False
            self._own_path(pages, idxs)
            leaf = pages[-1]
            del leaf.keys[i], leaf.vals[i]
            leaf.nbytes -= leaf.sizes.pop(i)
            self._len -= 1
            self._gen += 1
            await self._rebalance_up(pages, idxs)
            return True
        finally:
            self._writing = False

    async def _rebalance_up(self, pages: list[_Page], idxs: list[int]) -> None:
        """Merge or even out underfull pages on the path with a sibling, bottom-up.

        A page that stays underfull is still a valid tree, so stopping early
        (e.g. a sibling's load failed) loses no data.
        """
        half = self._page_bytes // 2
        k = len(pages) - 1
        while k > 0 and pages[k].nbytes < half:
            parent, i = pages[k - 1], idxs[k - 1]
            if len(parent.vals) == 1:
                # Tiny pages with long keys can leave an only child (a 3-way
                # interior split); the parent level merges it away instead.
                k -= 1
                continue
            j = i + 1 if i + 1 < len(parent.vals) else i - 1
            ref = parent.vals[j]
            if type(ref) is not _Page:
                gen = self._gen
                sibling = self._cache.get(ref) or await self._load(ref, parent.level - 1)
                self._check_gen(gen)
                copy = self._copy(sibling)
                self._release(ref)
                parent.vals[j] = copy
            self._merge(parent, min(i, j))
            self._gen += 1
            k -= 1
            if parent.nbytes > self._page_bytes:
                # A longer separator came up from an even-out: now it overflows.
                self._split_up(pages[: k + 1], idxs[:k])
                break
        root = self._root
        while type(root) is _Page and root.level and len(root.vals) == 1:
            # Children of a dirty parent that were merged are dirty themselves.
            root = self._root = root.vals[0]
            assert type(root) is _Page and root.dirty

    def _merge(self, parent: _Page, a: int) -> None:
        """Join children a and a+1 of `parent`; split them evenly if they do not fit."""
        left, right = parent.vals[a], parent.vals[a + 1]
        if left.level == 0:
            left.keys += right.keys
            left.sizes += right.sizes
        else:
            # The parent's separator comes down between the two halves.
            left.keys.append(parent.keys[a])
            left.keys += right.keys
            left.sizes.append(parent.sizes[a + 1])
            left.sizes += right.sizes[1:]
        left.vals += right.vals
        left.nbytes = PAGE_OVERHEAD + sum(left.sizes)
        if left.nbytes <= self._page_bytes or len(left.vals) < 2:
            del parent.keys[a], parent.vals[a + 1]
            parent.nbytes -= parent.sizes.pop(a + 1)
            return
        new_right, sep, sep_size = self._split(left)
        parent.vals[a + 1] = new_right
        parent.keys[a] = sep
        self._set_child_size(parent, a + 1, CHILD_BYTES + sep_size)

    # ----------------------------------------------------------------- flushing

    def flush(self, writer: SegmentWriter) -> FlushResult:
        """Append every dirty page to `writer`; see the module docstring."""
        if self._writing:
            raise RuntimeError("flush during a put/delete of the same BTree")
        root = self._root
        if type(root) is _Page:
            pages_before = len(self._cache)
            if self._len == 0:
                self._root = None
            else:
                self._root = self._write(root, writer, self._len)
            self._gen += 1
            logger.debug(
                "flushed B+tree: root %s, %d entries, %d cache pages before",
                self._root,
                self._len,
                pages_before,
            )
        released, self._released = self._released, {}
        return FlushResult(self._root, released)

    def _write(self, page: _Page, writer: SegmentWriter, count: int | None) -> Location:
        vals = page.vals
        if page.level:
            for i, child in enumerate(vals):
                if type(child) is _Page:
                    vals[i] = self._write(child, writer, None)
            wvals = [loc.to_wire() for loc in vals]
        else:
            ve = self._vc.encode
            wvals = [ve(v) for v in vals]
        ke = self._kc.encode
        wkeys = [ke(k) for k in page.keys]
        data = frame(RecordType.BTREE_PAGE, PAGE_VERSION, [page.level, count, wkeys, wvals])
        location = writer.append(data)
        page.count = count
        page.sizes = None
        page.dirty = False
        self._cache.add(location, page)
        return location

    # ---------------------------------------------------------------- checking

    async def verify(self) -> int:
        """Walk the whole tree checking its invariants; the number of entries.

        Raises LayoutError for a tree that is not a valid B+tree (for fsck).
        """
        root = await self._root_page()
        if root is None:
            return 0
        n = await self._verify(root, self._root, None, None, True)
        if n != self._len:
            raise LayoutError(f"B+tree holds {n} entries, its root says {self._len}")
        return n

    async def _verify(self, page: _Page, ref: Any, lo: Any, hi: Any, is_root: bool) -> int:
        where = f"B+tree page in {ref}" if type(ref) is Location else "dirty B+tree page"
        keys = page.keys
        if not is_root and not page.vals:
            raise LayoutError("empty non-root B+tree page", where)
        if any(not a < b for a, b in zip(keys, keys[1:], strict=False)):
            raise LayoutError("keys not strictly increasing", where)
        if keys and ((lo is not None and keys[0] < lo) or (hi is not None and not keys[-1] < hi)):
            raise LayoutError("keys outside the range their parent gives", where)
        self._verify_size(page, ref, where)
        if page.level == 0:
            return len(keys)
        bounds = [lo, *keys, hi]
        n = 0
        for i, child in enumerate(page.vals):
            if type(child) is _Page:
                if not page.dirty:
                    raise LayoutError("clean page points at a dirty page", where)
                sub = child
            else:
                sub = await self._load(child, page.level - 1)
            n += await self._verify(sub, child, bounds[i], bounds[i + 1], False)
        return n

    def _verify_size(self, page: _Page, ref: Any, where: str) -> None:
        if page.dirty:
            expect = self._copy(page)
            if expect.sizes != page.sizes or expect.nbytes != page.nbytes:
                raise LayoutError("tracked page size is wrong", where)
            size = page.nbytes
        else:
            size = ref.length
        if size > self._page_bytes and len(page.vals) > 1:
            raise LayoutError(f"page of {size} bytes exceeds {self._page_bytes}", where)
