"""One imgr per volume: a second imgr refuses a served volume, and takes over a dead one's.

"Nothing of A's was deleted" is checked on the container listing: B must
not collect garbage, write a takeover checkpoint, or otherwise touch a
volume whose owner's heartbeat is fresh.
"""

from __future__ import annotations

import pytest
import trio

from imgr.api import NoVolume
from layout.codec import Location
from objfs.rpc import ReconnectPolicy, RpcClient, RpcUnavailable
from tests.imgr.conftest import IMGR_BACKENDS, SECRET
from tests.imgr.helpers import (
    ONE_TRY,
    admin,
    formatted,
    kill_9,
    mount,
    object_names,
    status,
    wait_until,
)


async def quiet(daemon, name: str = "v1") -> dict:
    """/volume/NAME once no garbage is left to collect."""

    async def check() -> dict | None:
        shown = await status(daemon, f"/volume/{name}")
        return None if shown["gc"]["pending"] or shown["gc"]["deleting"] else shown

    return await wait_until(check, 10, "garbage collected")


async def put_and_flush(client, count: int = 3) -> dict[int, Location]:
    first = await client.fetch_nonces("inode", count)
    obj = await client.fetch_nonces("object", 1)
    entries = {first + k: Location(obj, 10 * k, 10) for k in range(count)}
    await client.put_entries(entries, objects={obj: 10 * count})
    await client.flush()
    return entries


@pytest.mark.parametrize("backend", IMGR_BACKENDS)
async def test_second_imgr_refuses_a_served_volume(deployment, backend):
    url = formatted(deployment, backend)
    a = deployment.start_imgr({"v1": url})
    async with mount(deployment, a, "v1", url) as c:
        first = await put_and_flush(c)
        served = await quiet(a)
        before = await object_names(url)

        b = deployment.start_imgr({"v1": url}, id="imgr-b")
        (shown,) = await status(b, "/volume")
        assert shown["name"] == "v1" and shown["state"] == "failed"
        assert "imgr-a" in shown["reason"]
        assert (await status(b, "/volume/v1"))["state"] == "failed"
        refused = admin("serve", "v1", url, "--secret", SECRET, "--connect", f"127.0.0.1:{b.port}")
        assert refused.returncode == 2
        assert "imgr-a" in refused.stderr
        with pytest.raises(NoVolume):
            async with mount(deployment, b, "v1", url):
                pass

        assert before <= await object_names(url), "B deleted objects of A's volume"
        # A is not fenced: its checkpoints still go through.
        second = await put_and_flush(c)
        for inode, location in {**first, **second}.items():
            assert await c.get_entry(inode) == location
        now = await status(a, "/volume/v1")
        assert now["state"] == "serving"
        assert now["checkpoint"]["sequence"] > served["checkpoint"]["sequence"]


async def test_takeover_only_after_the_owner_ttl(deployment):
    ttl = 3.0
    url = formatted(deployment, "file")
    a = deployment.start_imgr({"v1": url}, "--owner-ttl", str(ttl))
    async with mount(deployment, a, "v1", url, policy=ONE_TRY) as c:
        entries = await put_and_flush(c)
        kill_9(a)
    killed = trio.current_time()

    b = deployment.start_imgr({"v1": url}, "--owner-ttl", str(ttl), id="imgr-b")
    assert (await status(b, "/volume/v1"))["state"] == "failed"  # A's heartbeat is fresh

    async with RpcClient.connect(
        "127.0.0.1", b.port, policy=ReconnectPolicy(attempts=3)
    ) as admin_rpc:

        async def serve() -> bool:
            try:
                await admin_rpc.call("ServeVolume", {"name": "v1", "url": url, "secret": SECRET})
            except RpcUnavailable:
                return False
            return True

        await wait_until(serve, ttl + 5, "imgr B serving the volume of dead imgr A")
    waited = trio.current_time() - killed
    # A heartbeats every ttl/3: its last one was at most that old when it died.
    assert waited >= ttl * 2 / 3 - 0.2, f"taken over {waited:.2f}s after A died"

    assert (await status(b, "/volume/v1"))["state"] == "serving"
    async with mount(deployment, b, "v1", url) as c:
        for inode, location in entries.items():
            assert await c.get_entry(inode) == location
        await put_and_flush(c)
