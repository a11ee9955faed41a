"""The status server of a real imgr: every page answers, with what the volume holds."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from layout.codec import Location
from objfs.version import VERSION
from tests.imgr.helpers import formatted, http_get, mount, status


async def test_every_status_page_of_a_real_imgr(deployment):
    url = formatted(deployment, "file")
    d = deployment.start_imgr({"v1": url})
    async with mount(deployment, d, "v1", url) as c:
        inode = await c.fetch_nonces("inode", 1)
        obj = await c.fetch_nonces("object", 1)
        await c.lease(inode, "exclusive")
        await c.put_entries({inode: Location(obj, 0, 10)}, objects={obj: 10})
        await c.flush()

        page = await http_get(d, "/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "v1" in page.text
        assert (await status(d, "/config"))["id"] == "imgr-a"
        assert (await status(d, "/version")) == {"name": "imgr", "version": VERSION}
        stats = await status(d, "/stats")
        assert stats["rpc"]["Mount"]["calls"] == 1
        assert stats["rpc"]["PutInodeTableEntries"]["calls"] == 1

        (volume,) = await status(d, "/volume")
        assert volume["name"] == "v1" and volume["state"] == "serving"
        assert volume["inodes"] == 2 and volume["mounts"] == 1
        assert volume["checkpoint"]["sequence"] >= 2
        detail = await status(d, "/volume/v1")
        assert [m["id"] for m in detail["mounts_detail"]] == [c.mount_id]
        assert {"pending", "deleting", "deleted", "superblock_object"} <= set(detail["gc"])
        root = await status(d, "/volume/v1/inode/1")
        assert root["head"]["type"] == "directory"
        assert root["location"] == list((await c.get_entry(1)).to_wire())
        assert (await status(d, f"/volume/v1/inode/{inode}"))["leases"] == {c.mount_id: "exclusive"}
        leases = await status(d, "/leases")
        assert [(r["volume"], r["inode"], r["mount"], r["mode"]) for r in leases] == [
            ("v1", inode, c.mount_id, "exclusive")
        ]
        for path, code in (("/volume/v2", 404), ("/volume/v1/inode/0", 400)):
            assert (await http_get(d, path)).status_code == code

        metrics = await http_get(d, "/metrics")
        assert metrics.status_code == 200
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(metrics.text)
            for s in family.samples
        }
        assert samples[("objfs_imgr_inodes", (("volume", "v1"),))] == 2
        assert samples[("objfs_imgr_mounts", (("volume", "v1"),))] == 1
