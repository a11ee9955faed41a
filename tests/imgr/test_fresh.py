"""Fresh inode ranges: implicitly leased to the mount that fetched them."""

from __future__ import annotations

import pytest
import trio

from imgr.fresh import FreshInodes
from layout.codec import Location
from objfs.rpc import PermissionDenied
from tests.imgr.helpers import formatted, mount


def test_owner_of_a_number_in_a_range():
    fresh = FreshInodes()
    fresh.add("a", 100, 10)
    fresh.add("b", 110, 5)
    assert fresh.owner(99) is None
    assert fresh.owner(100) == "a" and fresh.owner(109) == "a"
    assert fresh.owner(110) == "b" and fresh.owner(115) is None


def test_taking_a_number_splits_its_range():
    fresh = FreshInodes()
    fresh.add("a", 100, 10)
    assert fresh.take(105) == "a"
    assert fresh.owner(105) is None and fresh.take(105) is None
    assert fresh.owner(104) == "a" and fresh.owner(106) == "a"
    assert fresh.take(100) == "a" and fresh.take(109) == "a"
    assert len(fresh) == 2  # [101, 105) and [106, 109)


def test_dropping_a_mount_frees_only_its_ranges():
    fresh = FreshInodes()
    fresh.add("a", 1, 5)
    fresh.add("b", 6, 5)
    fresh.add("a", 11, 5)
    fresh.drop("a")
    assert fresh.owner(1) is None and fresh.owner(12) is None and fresh.owner(7) == "b"


async def test_fresh_inodes_need_no_lease_until_another_mount_asks(deployment):
    url = formatted(deployment, "file")
    daemon = deployment.start_imgr({"v1": url})
    interrupts = []

    async def on_interrupt(inode, to):
        interrupts.append((inode, to))

    with trio.fail_after(30):
        async with (
            mount(deployment, daemon, "v1", url, on_interrupt) as a,
            mount(deployment, daemon, "v1", url) as b,
        ):
            first = await a.fetch_nonces("inode", 4)
            obj = await a.fetch_nonces("object", 1)
            await a.put_entries({first: Location(obj, 0, 50)}, objects={obj: 200})
            with pytest.raises(PermissionDenied):
                await b.put_entries({first: Location(obj, 50, 50)})
            assert await b.lease(first, "shared") == "shared"
            assert interrupts == [(first, "shared")]
            with pytest.raises(PermissionDenied):
                await a.put_entries({first: Location(obj, 50, 50)})
            # The rest of the range is still A's alone.
            await a.put_entries({first + 1: Location(obj, 100, 50)})
