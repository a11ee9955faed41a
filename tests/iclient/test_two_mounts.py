"""Two mounts of one volume: close-to-open through leases, renames seen on the other side."""

from __future__ import annotations

import os
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
