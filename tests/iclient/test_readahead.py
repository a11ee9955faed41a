"""The kernel's read-ahead window of a mount: what iclient prefetches, not 128 KiB."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from iclient.readahead import mount_device, set_kernel_readahead
from tests.deployment import deployed
from tests.mounts import iclient, mountpoint, serve_volume


def _read_ahead_kb(path: Path) -> int:
    dev = os.stat(path).st_dev
    return int(Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb").read_text())


@pytest.mark.parametrize(
    ("flags", "kib"), [((), 8 * 1024), (("--readahead", "3", "--block-kib", "256"), 768)]
)
def test_a_mount_reads_ahead_as_far_as_it_prefetches(request, tmp_path, flags, kib):
    with deployed(request, tmp_path) as deployment:
        url, imgr = serve_volume(deployment, "file")
        with mountpoint() as path, iclient(deployment, imgr, url, path, *flags):
            deadline = time.monotonic() + 10  # set once the kernel's INIT is answered
            while _read_ahead_kb(path) != kib:
                assert time.monotonic() < deadline, f"read_ahead_kb is {_read_ahead_kb(path)}"
                time.sleep(0.05)


def test_mount_device_reads_escaped_mount_points(tmp_path):
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 0:21 / /proc rw - proc proc rw\n"
        "40 22 0:39 / /tmp/a\\040b rw - fuse.objfs objfs:v rw\n"
        "41 22 0:40 / /tmp/a\\040b rw - fuse.objfs objfs:v rw\n"  # mounted over: the last counts
    )
    assert mount_device("/tmp/a b", str(mountinfo)) == "0:40"
    assert mount_device("/tmp/none", str(mountinfo)) is None


def test_no_sysfs_leaves_the_window_and_says_so(tmp_path, caplog):
    with mountpoint() as path:  # not mounted: not in mountinfo
        assert not set_kernel_readahead(str(path), 1024, tmp_path)
    assert "is not in" in caplog.text
