"""imgr's status app over a fake provider: every route, its content type and errors."""

from __future__ import annotations

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from imgr.status import app
from objfs.status import serve_http
from objfs.version import VERSION

NAMES = ("vol1", "<b>x</b>")


def _volume(name: str, n: int) -> dict:
    return {
        "name": name,
        "url": f"swift://c{n}",
        "state": "serving",
        "volume_id": f"id{n}",
        "mounts": n,
        "leases": 10 * n,
        "checkpoint": {"sequence": 100 + n, "age_seconds": 1.5 * n, "count": 3},
        "inodes": 1000 + n,
        "objects": {"live": 20 + n, "garbage": 30 + n, "deleted": 40 + n},
        "bytes": {"written": 5000 + n, "referenced": 4000 + n, "garbage": 900 + n},
    }


class FakeProvider:
    def __init__(self) -> None:
        self.calls = 0
        self.volume_list = [_volume(name, n) for n, name in enumerate(NAMES, 1)]
        # A volume that has not checkpointed yet has no age.
        self.volume_list[1]["checkpoint"]["age_seconds"] = None

    def config(self) -> dict:
        return {"listen": "127.0.0.1:32356", "token": "<redacted>"}

    def stats(self) -> dict:
        rpc = {
            "Mount": {"calls": 2, "errors": 1, "seconds": 0.25},
            "Lease": {"calls": self.calls, "errors": 0, "seconds": 1.5},
        }
        return {"uptime_seconds": 12.0, "rpc": rpc}

    def volumes(self) -> list[dict]:
        return self.volume_list

    def volume(self, name: str) -> dict | None:
        for volume in self.volume_list:
            if volume["name"] == name:
                mount = {"id": "m1", "peer": "1.2.3.4:5", "age_seconds": 3.0}
                detail = {**mount, "expelled": False, "leases": 1, "open": 2}
                return {**volume, "mounts_detail": [detail], "gc": {"pending": 0}}
        return None

    async def inode(self, name: str, inode: int) -> dict | None:
        if name == "vol1" and inode == 1:
            return {"inode": 1, "location": ["obj", 0, 42]}
        return None

    def leases(self) -> list[dict]:
        lease = {"volume": "vol1", "inode": 1, "mount": "m1", "mode": "shared", "waiting": []}
        return [lease, {**lease, "inode": 2, "mode": "exclusive"}]


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
async def get(nursery, provider: FakeProvider):
    """GET a path from the app served on a real socket (stopped with the test's nursery)."""
    port = await nursery.start(serve_http, app(provider), "127.0.0.1", 0)

    async def get(path: str) -> httpx.Response:
        # httpx's async client needs asyncio; its sync one runs fine in a thread.
        return await trio.to_thread.run_sync(httpx.get, f"http://127.0.0.1:{port}{path}")

    return get


async def get_json(get, path: str, status: int = 200):
    response = await get(path)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


async def test_json_routes(get, provider):
    assert await get_json(get, "/config") == provider.config()
    assert await get_json(get, "/version") == {"name": "imgr", "version": VERSION}
    assert await get_json(get, "/volume") == provider.volumes()
    assert await get_json(get, "/volume/vol1") == provider.volume("vol1")
    assert (await get_json(get, "/volume/%3Cb%3Ex%3C%2Fb%3E"))["name"] == "<b>x</b>"
    assert await get_json(get, "/volume/vol1/inode/1") == {"inode": 1, "location": ["obj", 0, 42]}
    assert await get_json(get, "/leases") == provider.leases()


async def test_stats_add_rates(get, provider):
    stats = await get_json(get, "/stats")
    assert stats["uptime_seconds"] == 12.0 and stats["rpc"] == provider.stats()["rpc"]
    assert stats["rpc_rates"] == {}  # one sample: nothing to compare with yet
    provider.calls = 1000
    rates = (await get_json(get, "/stats"))["rpc_rates"]
    assert rates["Mount"] == 0 and rates["Lease"] > 0


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/volume/nope", 404),
        ("/volume/nope/inode/1", 404),
        ("/volume/vol1/inode/2", 404),
        ("/volume/vol1/inode/0", 400),
        ("/volume/vol1/inode/-1", 400),
        ("/volume/vol1/inode/abc", 400),
        ("/volume/vol1/inode/1.5", 400),
        ("/volume/vol1/inode/%2B5", 400),
        ("/volume/%3Cb%3Ex%3C%2Fb%3E/inode/x", 400),
        ("/volume/%3Cb%3Ex%3C%2Fb%3E/inode/1", 404),
        ("/nowhere", 404),
        ("/volume/vol1/extra", 404),
    ],
)
async def test_errors_are_json(get, path, status):
    assert "error" in await get_json(get, path, status)


async def test_metrics(get, provider):
    response = await get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples[("objfs_imgr_" + name, tuple(sorted(labels.items())))]

    assert value("uptime_seconds") == 12.0
    assert value("rpc_calls_total", method="Mount") == 2
    assert value("rpc_errors_total", method="Mount") == 1
    assert value("rpc_seconds_total", method="Lease") == 1.5
    for volume in provider.volumes():
        name = volume["name"]
        assert value("inodes", volume=name) == volume["inodes"]
        for state in ("live", "garbage"):
            assert value("objects", volume=name, state=state) == volume["objects"][state]
        for state in ("written", "referenced", "garbage"):
            assert value("bytes", volume=name, state=state) == volume["bytes"][state]
        assert value("checkpoint_sequence", volume=name) == volume["checkpoint"]["sequence"]
        assert value("mounts", volume=name) == volume["mounts"]
        assert value("leases", volume=name) == volume["leases"]
    assert value("checkpoint_age_seconds", volume="vol1") == 1.5
    assert ("objfs_imgr_checkpoint_age_seconds", (("volume", "<b>x</b>"),)) not in samples


async def test_dashboard(get, provider):
    response = await get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert 'href="/volume/%3Cb%3Ex%3C%2Fb%3E"' in page
    assert 'href="/volume/vol1"' in page and 'href="/metrics"' in page
    assert "2 leases" in page
    for cell in ("Mount", "1001", "5002", "4001", "902", "102"):
        assert f"<td>{cell}</td>" in page
