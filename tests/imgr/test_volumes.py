"""Volumes of real imgr daemons: format, mount tokens, the admin verbs, several volumes,
and an inode deleted while another mount has it open.
"""

from __future__ import annotations

import json

import pytest

from imgr.api import NoVolume
from imgr.client import ImgrClient
from layout.codec import Location
from objfs.rpc import NotFound, PermissionDenied
from tests.imgr.conftest import IMGR_BACKENDS, SECRET
from tests.imgr.helpers import (
    admin,
    formatted,
    head,
    mount,
    object_names,
    status,
    wait_until,
    write_heads,
)


def test_format_refuses_a_container_holding_a_volume(deployment):
    url = formatted(deployment, "file")
    for name in ("v1", "other"):  # ickpt knows v1; the container holds objects either way
        again = deployment.format(name, url)
        assert again.returncode == 2
        assert again.stderr.startswith("imgr: ") and again.stderr.count("\n") == 1, again.stderr
        assert "--force" in again.stderr
    forced = deployment.format("v1", url, "--force")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.startswith("formatted volume v1")


def wrong_token(deployment, backend: str) -> str:
    if backend == "azure":  # a valid SAS, for another container
        return deployment.token(deployment.volume_url("azure"))
    if backend == "swift":
        return "AUTH_tk" + "0" * 32
    return SECRET + "-not"


@pytest.mark.parametrize("backend", IMGR_BACKENDS)
async def test_mount_with_a_wrong_token_is_refused(deployment, backend):
    url = formatted(deployment, backend)
    d = deployment.start_imgr({"v1": url})
    with pytest.raises(PermissionDenied):
        async with ImgrClient.mount("127.0.0.1", d.port, "v1", wrong_token(deployment, backend)):
            pass
    async with mount(deployment, d, "v1", url) as c:
        assert c.root == 1
        await c.get_entry(1)
    rpc = (await status(d, "/stats"))["rpc"]["Mount"]
    assert rpc["calls"] == 2 and rpc["errors"] == 1


async def test_admin_verbs_and_two_volumes_on_one_imgr(deployment):
    url1, url2 = formatted(deployment, "file", "v1"), formatted(deployment, "file", "v2")
    d = deployment.start_imgr({"v1": url1})
    connect = ("--connect", f"127.0.0.1:{d.port}")

    def volumes() -> dict[str, str]:
        listed = admin("volumes", *connect)
        assert listed.returncode == 0, listed.stderr
        return {v["name"]: v["state"] for v in json.loads(listed.stdout)}

    assert volumes() == {"v1": "serving"}
    served = admin("serve", "v2", url2, "--secret", SECRET, *connect)
    assert served.returncode == 0, served.stderr
    assert volumes() == {"v1": "serving", "v2": "serving"}

    async with mount(deployment, d, "v1", url1) as c1, mount(deployment, d, "v2", url2) as c2:
        assert c1.volume_id != c2.volume_id
        written = {}
        for c in (c1, c2):
            inode = await c.fetch_nonces("inode", 1)
            obj = await c.fetch_nonces("object", 1)
            written[c] = (inode, Location(obj, 0, 10))
            await c.put_entries({inode: written[c][1]}, objects={obj: 10})
            await c.flush()
        for c, other in ((c1, c2), (c2, c1)):
            inode, location = written[c]
            assert await c.get_entry(inode) == location
            if written[other][0] != inode:
                with pytest.raises(NotFound):
                    await other.get_entry(inode)
    assert {v["name"]: v["inodes"] for v in await status(d, "/volume")} == {"v1": 2, "v2": 2}

    unserved = admin("unserve", "v2", *connect)
    assert unserved.returncode == 0, unserved.stderr
    assert volumes() == {"v1": "serving"}
    with pytest.raises(NoVolume):
        async with mount(deployment, d, "v2", url2):
            pass
    # A clean stop gave the volume up: another imgr serves it at once, with its data.
    other = deployment.start_imgr({"v2": url2}, id="imgr-b")
    async with mount(deployment, other, "v2", url2) as c:
        inode, location = written[c2]
        assert await c.get_entry(inode) == location
    missing = admin("unserve", "v2", *connect)
    assert missing.returncode == 2 and "not served" in missing.stderr


async def test_deleted_inode_stays_readable_until_the_last_close(deployment):
    url = formatted(deployment, "file")
    d = deployment.start_imgr({"v1": url})
    async with mount(deployment, d, "v1", url) as a:
        first = await a.fetch_nonces("inode", 2)
        closed, unmounted = first, first + 1
        obj = await a.fetch_nonces("object", 2)
        heads = {}
        for n, inode in enumerate((closed, unmounted)):
            where, size = await write_heads(url, obj + n, [head(inode)])
            await a.put_entries(where, objects={obj + n: size})
            heads.update(where)

        async with mount(deployment, d, "v1", url) as b:
            for inode in (closed, unmounted):
                assert await b.adjust_open(inode, 1) == 1
                await a.delete_entry(inode)
            assert await b.adjust_open(closed, 1) == 2
            for inode in (closed, unmounted):
                assert await b.get_entry(inode) == heads[inode]
                assert await a.get_entry(inode) == heads[inode]
            shown = await status(d, f"/volume/v1/inode/{closed}")
            assert shown["open"] == {b.mount_id: 2}

            assert await b.adjust_open(closed, -1) == 1
            assert await b.get_entry(closed) == heads[closed]
            assert await b.adjust_open(closed, -1) == 0
            with pytest.raises(NotFound):
                await b.get_entry(closed)
            assert await a.get_entry(unmounted) == heads[unmounted]
        # B's unmount closed what it still had open.
        with pytest.raises(NotFound):
            await a.get_entry(unmounted)
        assert (await status(d, "/volume/v1"))["inodes"] == 1

        # Their bytes were released: both head objects are collected.
        await a.flush()
        names = {f"{heads[i].object:016x}"[::-1] for i in (closed, unmounted)}

        async def collected() -> bool:
            return not names & await object_names(url)

        await wait_until(collected, 10, "the deleted inodes' head objects collected")
