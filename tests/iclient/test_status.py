"""The status server of a real iclient mount: every page answers with what the mount did."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from iclient.view import MountView
from objfs.version import VERSION
from tests import daemons
from tests.deployment import SECRET, deployed
from tests.mounts import VOLUME, Mounted, iclient, mountpoint, serve_volume

CHUNK = b"x" * 4096
WRITES = 3
ODD_NAME = b"odd-\xff-name"  # not UTF-8: the pages must still show it


@dataclass
class Scene:
    mounted: Mounted
    file: os.stat_result  # d/a, written WRITES times, fsynced and read back
    directory: os.stat_result
    odd: os.stat_result  # ODD_NAME, with a user.tag xattr

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.mounted.http_port}{path}", timeout=10)

    def json(self, path: str) -> dict:
        response = self.get(path)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        return response.json()


@pytest.fixture(scope="module")
def scene(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    with deployed(request, tmp_path_factory.mktemp("iclient-status")) as deployment:
        url, imgr = serve_volume(deployment, "file")
        with mountpoint() as path, iclient(deployment, imgr, url, path) as mounted:
            (path / "d").mkdir()
            fd = os.open(path / "d" / "a", os.O_CREAT | os.O_WRONLY, 0o640)
            try:
                for _ in range(WRITES):
                    os.write(fd, CHUNK)
                os.fsync(fd)
            finally:
                os.close(fd)
            assert (path / "d" / "a").read_bytes() == CHUNK * WRITES
            odd = os.path.join(os.fsencode(path), ODD_NAME)
            with open(odd, "wb") as f:
                f.write(b"odd")
            os.setxattr(odd, "user.tag", b"v")
            yield Scene(mounted, os.stat(path / "d" / "a"), os.stat(path / "d"), os.stat(odd))


def test_stats_count_the_operations_done(scene):
    stats = scene.json("/stats")
    ops = stats["ops"]
    assert ops["write"] >= WRITES + 1 and ops["fsync"] >= 1
    assert ops["open"] >= 1 and ops["read"] >= 1 and ops["setxattr"] >= 1
    buffer = stats["buffer"]
    assert buffer["uploaded_bytes"] >= WRITES * len(CHUNK) and buffer["uploaded_objects"] >= 1
    assert buffer["dirty_bytes"] == buffer["memory_bytes"] + buffer["spilled_bytes"]
    assert buffer["memory_limit_bytes"] == 256 << 20 and buffer["upload_slots"] == 4
    assert stats["commits"]["commits"] >= 1
    inodes = stats["inodes"]
    assert inodes["inodes_held"] >= 4  # the root, d, d/a and the odd one
    assert inodes["leases_exclusive"] >= 3
    assert stats["volume"] == VOLUME and len(stats["mount_id"]) > 0
    assert stats["uptime_seconds"] > 0
    # The file was uploaded by fsync, so reading it back went to the read cache.
    cache = stats["read_cache"]
    assert cache["hits"] + cache["misses"] >= 1 and cache["fetched_bytes"] > 0
    assert 0 <= cache["hit_rate"] <= 1


def test_rates_appear_once_there_is_a_sample_to_compare_with(scene):
    first = scene.json("/stats")
    rates = scene.json("/stats")["op_rates"]
    assert set(first["ops"]) <= set(rates) and all(rate >= 0 for rate in rates.values())


def test_leases_list_the_created_inodes_as_exclusive(scene):
    leases = scene.json("/leases")
    assert leases["truncated"] is False and leases["count"] == len(leases["leases"])
    rows = {row["inode"]: row for row in leases["leases"]}
    for created in (scene.file, scene.directory, scene.odd):
        assert rows[created.st_ino]["mode"] == "exclusive"
        assert rows[created.st_ino]["opens"] == 0
    assert [row["inode"] for row in leases["leases"]] == sorted(rows)


def test_leases_are_capped_with_a_flag():
    # 10,000 inodes are too many to hold in a test mount; the cap is MountView's alone.
    held = {
        n: SimpleNamespace(number=n, lease=lease, dirty=False, opens=0)
        for n, lease in ((5, "shared"), (3, "none"), (2, "exclusive"), (9, "exclusive"))
    }
    view = MountView(SimpleNamespace(fs=SimpleNamespace(inodes=SimpleNamespace(held=held))))
    capped = view.leases(limit=2)
    assert capped["truncated"] is True and capped["count"] == 3
    assert [(row["inode"], row["mode"]) for row in capped["leases"]] == [
        (2, "exclusive"),
        (5, "shared"),
    ]
    assert view.leases()["truncated"] is False


def test_inode_pages_show_the_heads(scene):
    root = scene.json("/inode/1")
    assert root["inode"] == 1 and root["type"] == "directory" and root["links"] == []
    assert root["lease"] in ("shared", "exclusive")

    shown = scene.json(f"/inode/{scene.file.st_ino}")
    assert shown["type"] == "regular" and shown["size"] == scene.file.st_size == WRITES * 4096
    assert shown["mode"] == "0o640" and shown["nlink"] == 1
    assert shown["uid"] == scene.file.st_uid and shown["gid"] == scene.file.st_gid
    assert shown["mtime_ns"] == scene.file.st_mtime_ns
    assert shown["links"] == [[scene.directory.st_ino, "a"]]
    assert shown["lease"] == "exclusive" and shown["dirty"] is False and shown["opens"] == 0
    # fsync committed it: the head is in the table, its data accounted to stored objects.
    assert shown["fresh"] is False and shown["loaded_from"] is not None
    assert sum(nbytes for _, nbytes in shown["accounting"]) >= WRITES * len(CHUNK)
    assert shown["payload"] is not None


def test_inode_page_keeps_non_utf8_names_and_lists_xattrs(scene):
    shown = scene.json(f"/inode/{scene.odd.st_ino}")
    ((parent, name),) = shown["links"]
    assert parent == 1 and name.encode("utf-8", "surrogateescape") == ODD_NAME
    assert shown["xattrs"] == ["user.tag"] and shown["size"] == 3


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/inode/999999999", 404),
        ("/inode/0", 400),
        ("/inode/junk", 400),
        ("/inode/-1", 400),
        ("/inode/%20%2B5", 400),
        ("/nothing-here", 404),
    ],
)
def test_errors_are_json(scene, path, code):
    response = scene.get(path)
    assert response.status_code == code
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]


def test_config_hides_the_token(scene):
    response = scene.get("/config")
    assert response.status_code == 200
    config = response.json()
    assert SECRET not in response.text
    assert config["volume"] == VOLUME and config["token"] == "***"
    assert config["mountpoint"] == str(scene.mounted.path)


def test_version(scene):
    assert scene.json("/version") == {"name": "iclient", "version": VERSION}


def test_metrics_parse_and_agree_with_stats(scene):
    response = scene.get("/metrics")
    assert response.status_code == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert all(name.startswith("objfs_iclient_") for name, _ in samples)
    assert samples[("objfs_iclient_ops_total", (("op", "write"),))] >= WRITES + 1
    assert samples[("objfs_iclient_uploaded_bytes_total", ())] >= WRITES * len(CHUNK)
    assert samples[("objfs_iclient_leases", (("mode", "exclusive"),))] >= 3
    assert samples[("objfs_iclient_commits_total", ())] >= 1
    for name in ("uploads_in_flight", "inodes_held", "inodes_dirty", "read_cache_bytes"):
        assert ("objfs_iclient_" + name, ()) in samples
    for where in ("memory", "disk"):
        assert ("objfs_iclient_dirty_bytes", (("where", where),)) in samples
    for name in ("read_cache_hits_total", "read_cache_misses_total"):
        assert ("objfs_iclient_" + name, ()) in samples


def test_dashboard_is_html_for_people(scene):
    response = scene.get("/")
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    page = response.text
    assert f"iclient {VOLUME}" in page and str(scene.mounted.path) in page
    for path in ("/stats", "/leases", "/metrics", "/config"):
        assert f'href="{path}"' in page
    assert "Write-back buffer" in page and "<td>write</td>" in page


def test_a_taken_status_port_is_one_line_and_no_mount_is_left(request, tmp_path):
    with deployed(request, tmp_path) as deployment, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        url, imgr = serve_volume(deployment, "file")
        with mountpoint() as path:
            argv = [
                daemons.command("iclient"), "run", str(path), "--imgr", f"127.0.0.1:{imgr.port}",
                "--volume", VOLUME, "--token", SECRET, "--store", url,
                "--cache-dir", str(tmp_path / "cache"), "--http-port", str(taken.getsockname()[1]),
            ]  # fmt: skip
            result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
            assert result.returncode == 2
            lines = [line for line in result.stderr.splitlines() if line.startswith("iclient: ")]
            assert len(lines) == 1 and "in use" in lines[0], result.stderr
            assert "Traceback" not in result.stderr
            assert str(path) not in Path("/proc/mounts").read_text()
