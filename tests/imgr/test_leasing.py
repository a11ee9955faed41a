"""Leases between two real mounts of a real imgr: interrupts, demotion, expulsion.

Leases do not depend on the store, so one backend (file://) is enough. The
conftest starts imgr with --lease-timeout 2.
"""

from __future__ import annotations

import pytest
import trio

from imgr.api import Expelled
from layout.codec import Location
from objfs.rpc import PermissionDenied
from tests.imgr.helpers import formatted, http_get, mount, status, wait_until

LEASE_TIMEOUT = 2.0
MARGIN = 3.0


async def holders(daemon, inode: int) -> dict[str, str]:
    """mount -> mode of the granted leases on `inode`, from GET /leases."""
    rows = await status(daemon, "/leases")
    return {r["mount"]: r["mode"] for r in rows if r["inode"] == inode and not r["waiting"]}


async def test_shared_request_demotes_the_holder_after_its_put(deployment):
    url = formatted(deployment, "file")
    d = deployment.start_imgr({"v1": url})
    interrupts: list[tuple[int, str]] = []
    a_client = []

    async def a_flushes(inode: int, to: str) -> None:
        # What a real mount does: write back what it changed of the inode, then answer.
        if to == "shared":
            (a,) = a_client
            await a.put_entries({inode: Location(obj + 1, 0, 50)}, objects={obj + 1: 50})
        interrupts.append((inode, to))

    async with mount(deployment, d, "v1", url, a_flushes) as a:
        a_client.append(a)
        async with mount(deployment, d, "v1", url) as b:
            inode = await a.fetch_nonces("inode", 1)
            obj = await a.fetch_nonces("object", 3)
            assert await a.lease(inode, "exclusive") == "exclusive"
            await a.put_entries({inode: Location(obj, 0, 100)}, objects={obj: 100})
            assert await holders(d, inode) == {a.mount_id: "exclusive"}

            assert await b.lease(inode, "shared") == "shared"
            assert interrupts == [(inode, "shared")]
            assert await holders(d, inode) == {a.mount_id: "shared", b.mount_id: "shared"}
            # B sees what A wrote back before letting go.
            assert await b.get_entry(inode) == Location(obj + 1, 0, 50)
            shown = await status(d, f"/volume/v1/inode/{inode}")
            assert shown["leases"] == {a.mount_id: "shared", b.mount_id: "shared"}

            # A shared lease is no licence to write.
            with pytest.raises(PermissionDenied):
                await a.put_entries({inode: Location(obj + 1, 0, 10)})

            assert await b.lease(inode, "exclusive") == "exclusive"
            assert interrupts == [(inode, "shared"), (inode, "none")]
            assert await holders(d, inode) == {b.mount_id: "exclusive"}
            await b.put_entries({inode: Location(obj + 2, 0, 10)}, objects={obj + 2: 10})
            with pytest.raises(PermissionDenied):
                await a.put_entries({inode: Location(obj + 1, 0, 20)})
            assert await a.get_entry(inode) == Location(obj + 2, 0, 10)


async def test_put_without_a_lease_is_refused(deployment):
    url = formatted(deployment, "file")
    d = deployment.start_imgr({"v1": url})
    async with mount(deployment, d, "v1", url) as a, mount(deployment, d, "v1", url) as b:
        inode = await a.fetch_nonces("inode", 1)
        obj = await a.fetch_nonces("object", 1)
        await a.lease(inode, "exclusive")
        await a.put_entries({inode: Location(obj, 0, 100)}, objects={obj: 100})
        for attempt in (
            b.put_entries({inode: Location(obj, 100, 10)}),
            b.put_entries({}, delete=[inode]),
            b.delete_entry(inode),
        ):
            with pytest.raises(PermissionDenied):
                await attempt
        assert await b.get_entry(inode) == Location(obj, 0, 100)


async def test_unresponsive_holder_is_expelled_after_the_lease_timeout(deployment):
    url = formatted(deployment, "file")
    d = deployment.start_imgr({"v1": url})
    interrupted = trio.Event()

    async def a_hangs(inode: int, to: str) -> None:
        interrupted.set()
        await trio.sleep_forever()

    async with mount(deployment, d, "v1", url, a_hangs) as a:
        async with mount(deployment, d, "v1", url) as b:
            inode = await a.fetch_nonces("inode", 1)
            obj = await a.fetch_nonces("object", 1)
            await a.lease(inode, "exclusive")
            await a.put_entries({inode: Location(obj, 0, 100)}, objects={obj: 100})

            start = trio.current_time()
            with trio.fail_after(LEASE_TIMEOUT + MARGIN):
                assert await b.lease(inode, "exclusive") == "exclusive"
            waited = trio.current_time() - start
            assert interrupted.is_set()
            assert waited >= LEASE_TIMEOUT * 0.9, f"granted after {waited:.2f}s, before the timeout"

            with pytest.raises(Expelled):
                await a.get_entry(inode)
            with pytest.raises(Expelled):
                await a.lease(inode, "shared")
            assert await holders(d, inode) == {b.mount_id: "exclusive"}
            shown = await status(d, "/volume/v1")
            by_id = {m["id"]: m for m in shown["mounts_detail"]}
            assert by_id[a.mount_id]["expelled"] is True
            assert "interrupt" in by_id[a.mount_id]["reason"]
            assert by_id[b.mount_id]["expelled"] is False
            assert shown["mounts"] == 1
            await b.put_entries({inode: Location(obj, 0, 10)})
            await b.flush()


async def test_expelled_mount_loses_its_open_counts(deployment):
    """An expelled mount's leases and open counts are gone: a doomed inode goes with it."""
    url = formatted(deployment, "file")
    d = deployment.start_imgr({"v1": url})

    async def a_hangs(inode: int, to: str) -> None:
        await trio.sleep_forever()

    async with mount(deployment, d, "v1", url, a_hangs) as a:
        async with mount(deployment, d, "v1", url) as b:
            inode, other = await b.fetch_nonces("inode", 1), await a.fetch_nonces("inode", 1)
            obj = await b.fetch_nonces("object", 1)
            await a.lease(other, "exclusive")
            await b.lease(inode, "exclusive")
            await b.put_entries({inode: Location(obj, 0, 100)}, objects={obj: 100})
            assert await a.adjust_open(inode, 1) == 1
            await b.delete_entry(inode)
            assert await b.get_entry(inode) == Location(obj, 0, 100)  # open on A

            with trio.fail_after(LEASE_TIMEOUT + MARGIN):
                await b.lease(other, "exclusive")  # A hangs: expelled

            async def gone() -> bool:
                return (await http_get(d, f"/volume/v1/inode/{inode}")).status_code == 404

            await wait_until(gone, MARGIN, "the doomed inode deleted after A's expulsion")
