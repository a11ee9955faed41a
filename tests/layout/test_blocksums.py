"""The digest table of segment objects (layout.blocksums), sealing, and reading it back."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layout.blocksums import BLOCK_SIZE, FOOTER, TAIL_GUESS, BlockSums, NeedMore, table
from layout.errors import LayoutError
from layout.naming import object_name
from layout.segment import Segment
from objfs import objects
from objfs.objects import read_block_sums
from objfs.storage import open_store

SIZES = [0, 1, BLOCK_SIZE - 1, BLOCK_SIZE, 3 * BLOCK_SIZE + 1]
WHERE = "object 00ff at 0"


def sealed(data: bytes) -> bytes:
    return data + table(data)


def sums_of(stored: bytes) -> BlockSums:
    return BlockSums.from_tail(stored[-TAIL_GUESS:], len(stored), WHERE)


def flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


@pytest.mark.parametrize("size", SIZES)
def test_round_trip(size):
    data = os.urandom(size)
    sums = sums_of(sealed(data))
    assert sums.covered == size
    sums.check(0, data, WHERE)
    assert sums.bad_blocks(0, data) == []
    for start in range(0, size, BLOCK_SIZE):  # block by block, the last one short
        sums.check(start, memoryview(data)[start : start + BLOCK_SIZE], WHERE)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4 * BLOCK_SIZE + 7), st.data())
def test_a_flipped_byte_is_found_in_its_block_only(size, draw):
    data = os.urandom(size)
    sums = sums_of(sealed(data))
    at = draw.draw(st.integers(0, size - 1))
    bad_block = at - at % BLOCK_SIZE
    damaged = flipped(data, at)
    assert sums.bad_blocks(0, damaged) == [bad_block]
    with pytest.raises(LayoutError, match=rf"offset {bad_block} fails.*\({WHERE}\)"):
        sums.check(0, damaged, WHERE)
    for start in range(0, size, BLOCK_SIZE):
        piece = damaged[start : start + BLOCK_SIZE]
        if start == bad_block:
            assert sums.bad_blocks(start, piece) == [start]
        else:
            sums.check(start, piece, WHERE)


def test_every_bad_block_is_listed():
    data = os.urandom(5 * BLOCK_SIZE)
    sums = sums_of(sealed(data))
    damaged = flipped(flipped(data, BLOCK_SIZE + 3), 4 * BLOCK_SIZE)
    assert sums.bad_blocks(0, damaged) == [BLOCK_SIZE, 4 * BLOCK_SIZE]
    assert sums.bad_blocks(2 * BLOCK_SIZE, damaged[2 * BLOCK_SIZE :]) == [4 * BLOCK_SIZE]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SIZES), st.data())
def test_a_damaged_table_or_footer_is_refused(size, draw):
    data = os.urandom(size)
    stored = sealed(data)
    at = draw.draw(st.integers(size, len(stored) - 1))  # any byte of the table or footer
    damaged = flipped(stored, at)
    with pytest.raises(LayoutError, match=r"object 00ff") as caught:
        BlockSums.from_tail(damaged, len(damaged), WHERE)  # the whole object: never NeedMore
    assert not isinstance(caught.value, NeedMore)


@pytest.mark.parametrize(
    "stored",
    [b"", b"short", os.urandom(3 * BLOCK_SIZE), sealed(b"x" * 100)[:-1], b"\0" + sealed(b"x")],
    ids=["empty", "shorter-than-a-footer", "no-table", "truncated", "shifted"],
)
def test_an_object_without_a_valid_table_is_refused(stored):
    with pytest.raises(LayoutError) as caught:
        BlockSums.from_tail(stored, len(stored), WHERE)
    assert not isinstance(caught.value, NeedMore)


def test_a_short_tail_asks_for_more():
    data = os.urandom(40 * BLOCK_SIZE)
    stored = sealed(data)
    needed = len(stored) - len(data)
    for short in (b"", stored[-FOOTER.size - 1 :], stored[-needed + 1 :]):
        with pytest.raises(NeedMore) as caught:
            BlockSums.from_tail(short, len(stored), WHERE)
        assert caught.value.n in (FOOTER.size, needed)
    assert BlockSums.from_tail(stored[-needed:], len(stored), WHERE).covered == len(data)


def test_ranges_that_are_not_whole_blocks_are_refused():
    data = os.urandom(2 * BLOCK_SIZE + 10)
    sums = sums_of(sealed(data))
    for offset, piece in [
        (1, data[1 : BLOCK_SIZE + 1]),  # not at a block start
        (0, data[: BLOCK_SIZE - 1]),  # ends inside a block
        (2 * BLOCK_SIZE, data[2 * BLOCK_SIZE :] + b"x"),  # past the covered bytes
    ]:
        with pytest.raises(ValueError):
            sums.bad_blocks(offset, piece)
        with pytest.raises(LayoutError, match=r"cannot check"):
            sums.check(offset, piece, WHERE)


def test_a_sealed_segment_ends_with_its_table_and_takes_no_more():
    segment = Segment(5)
    first = segment.append(b"a" * 1000)
    segment.overwrite(first.offset, b"b" * 10)
    segment.seal()
    stored = segment.data
    assert len(segment) == len(stored) > 1000
    assert stored[:1000] == b"b" * 10 + b"a" * 990
    sums = sums_of(stored)
    assert sums.covered == 1000
    sums.check(0, stored[:1000], WHERE)
    for change in (
        lambda: segment.append(b"x"),
        lambda: segment.overwrite(0, b"x"),
        segment.seal,
    ):
        with pytest.raises(ValueError, match="sealed"):
            change()


async def test_read_block_sums_from_a_store(monkeypatch):
    data = os.urandom(3 * BLOCK_SIZE + 5)
    async with open_store("mem://blocksums") as store:
        await store.ensure_container()
        await store.put(object_name(7), sealed(data))
        assert (await read_block_sums(store, 7)).covered == len(data)
        monkeypatch.setattr(objects, "TAIL_GUESS", 8)  # only the footer: a second GET
        (await read_block_sums(store, 7)).check(0, data, WHERE)
        with pytest.raises(LayoutError, match=r"missing \(object 8000000000000000\)"):
            await read_block_sums(store, 8)
        await store.put(object_name(9), data)
        with pytest.raises(LayoutError, match=r"no digest table footer.*object 9000000000000000"):
            await read_block_sums(store, 9)
