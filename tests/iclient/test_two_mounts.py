"""Two mounts of one volume: close-to-open through leases, renames seen on the other side."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deployment import deployed
from tests.mounts import iclient, mountpoint, serve_volume


@pytest.fixture(params=["file", "swift"])
def two_mounts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    with deployed(request, tmp_path) as deployment:
        url, imgr = serve_volume(deployment, request.param)
        with mountpoint() as a, mountpoint() as b:
            with iclient(deployment, imgr, url, a), iclient(deployment, imgr, url, b):
                yield a, b


def test_a_file_closed_on_one_is_read_whole_on_the_other(two_mounts):
    a, b = two_mounts
    data = os.urandom(3 << 20) + b"end"
    (a / "f").write_bytes(data)
    assert (b / "f").read_bytes() == data
    (a / "f").write_bytes(b"second version")
    assert (b / "f").read_bytes() == b"second version"
    (b / "f").write_bytes(b"written back on b")
    assert (a / "f").read_bytes() == b"written back on b"


def test_a_rename_on_one_is_seen_on_the_other(two_mounts):
    a, b = two_mounts
    (a / "d").mkdir()
    (a / "d" / "old").write_bytes(b"contents")
    assert (b / "d" / "old").read_bytes() == b"contents"
    os.rename(a / "d" / "old", a / "d" / "new")
    assert not (b / "d" / "old").exists()
    assert (b / "d" / "new").read_bytes() == b"contents"
    assert sorted(os.listdir(b / "d")) == ["new"]
    os.rename(b / "d", b / "e")
    assert sorted(os.listdir(a)) == ["e"]
    assert (a / "e" / "new").read_bytes() == b"contents"


def test_unlink_on_one_while_open_on_the_other(two_mounts):
    a, b = two_mounts
    (a / "f").write_bytes(b"still readable")
    with open(b / "f", "rb") as held:
        os.unlink(a / "f")
        assert not (b / "f").exists()
        assert held.read() == b"still readable"


def test_replacing_a_file_the_other_mount_keeps_reading(two_mounts):
    """Rename-over on one mount while the other reads in a loop: every interrupt crosses a
    lease request, and neither mount may end up changing an inode it no longer holds."""
    a, b = two_mounts
    versions = [os.urandom(256 << 10) + bytes([i]) for i in range(3)]
    hashes = {hashlib.sha256(v).hexdigest() for v in versions}
    (a / "f").write_bytes(versions[0])
    stop, seen, failed = threading.Event(), [], []

    def read_forever() -> None:
        while not stop.is_set():
            try:
                seen.append(hashlib.sha256((b / "f").read_bytes()).hexdigest())
            except OSError as exc:
                failed.append(exc)

    reader = threading.Thread(target=read_forever)
    reader.start()
    try:
        for i in range(60):
            (a / "f.new").write_bytes(versions[i % 3])
            os.rename(a / "f.new", a / "f")
    finally:
        stop.set()
        reader.join()
    assert failed == [] and seen and set(seen) <= hashes
    (a / "after").write_bytes(b"both mounts still work")
    assert (b / "after").read_bytes() == b"both mounts still work"
