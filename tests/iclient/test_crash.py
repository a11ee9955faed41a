"""Durability: kill -9 of iclient and imgr; what was fsynced is there, the rest is old or new."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests import daemons
from tests.deployment import deployed
from tests.fsck.helpers import fsck_json
from tests.mounts import VOLUME, iclient, mountpoint, serve_volume

FILES = 200


def _write(path: Path, data: bytes, sync: bool) -> None:
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _old(i: int) -> bytes:
    return f"old {i} ".encode() * (i + 1)


def _new(i: int) -> bytes:
    return f"NEW {i} ".encode() * (2 * i + 3)


@pytest.mark.parametrize("backend", ["file", "swift"])
def test_kill_9_of_iclient_and_imgr(request, tmp_path, backend):
    with deployed(request, tmp_path) as deployment:
        url, imgr = serve_volume(deployment, backend)
        with mountpoint() as path:
            with iclient(deployment, imgr, url, path) as mounted:
                (path / "d").mkdir()
                for i in range(FILES):
                    _write(path / "d" / f"f{i}", _old(i), sync=False)
                _write(path / "synced", b"durable", sync=True)  # fsyncs everything before it
                for i in range(FILES):
                    _write(path / "d" / f"f{i}", _new(i), sync=False)
                    if i % 3 == 0:
                        os.rename(path / "d" / f"f{i}", path / "d" / f"g{i}")
                (path / "late").write_bytes(b"never synced")
                daemons.stop(mounted.proc, signal.SIGKILL)
                daemons.stop(imgr.proc, signal.SIGKILL)
        imgr = deployment.start_imgr({"vol": url}, "--lease-timeout", "60")
        with mountpoint() as path, iclient(deployment, imgr, url, path):
            assert (path / "synced").read_bytes() == b"durable"
            names = set(os.listdir(path / "d"))
            for i in range(FILES):
                f, g = f"f{i}" in names, f"g{i}" in names
                assert f != g or (f and i % 3), f"f{i}/g{i}: {sorted(names)[:10]}"
                data = (path / "d" / (f"f{i}" if f else f"g{i}")).read_bytes()
                assert data in (_old(i), _new(i)), f"file {i} is neither old nor new"
                if g:
                    assert data == _new(i)  # renamed after the new write: the rename came later
            _walk_reads_everything(path)


def _walk_reads_everything(root: Path) -> None:
    """Every inode the volume holds can be stated and read (no EIO anywhere)."""
    for directory, _, files in os.walk(root):
        for name in files:
            (Path(directory) / name).read_bytes()


def _opened(path: Path, data: bytes, sync: bool) -> int:
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, data)
    if sync:
        os.fsync(fd)
    return fd


def test_files_unlinked_while_open_leave_nothing_lost_after_kill_9(request, tmp_path):
    # Without the orphan delete, both stay in the inode table with no name: lost inodes.
    with deployed(request, tmp_path) as deployment:
        url, imgr = serve_volume(deployment, "file")
        with mountpoint() as path:
            with iclient(deployment, imgr, url, path) as mounted:
                stored = _opened(path / "stored", b"in the table", sync=True)
                fresh = _opened(path / "fresh", b"never committed", sync=False)
                try:
                    os.unlink(path / "stored")
                    os.unlink(path / "fresh")
                    os.write(stored, b" and more")
                    os.fsync(stored)  # commits both deletes: orphans at imgr while open
                    assert os.pread(stored, 100, 0) == b"in the table and more"
                    assert os.pread(fresh, 100, 0) == b"never committed"
                    daemons.stop(mounted.proc, signal.SIGKILL)
                    daemons.stop(imgr.proc, signal.SIGKILL)
                finally:
                    for fd in (stored, fresh):
                        with contextlib.suppress(OSError):  # the mount is dead
                            os.close(fd)
        code, report = fsck_json(deployment, url)
        assert code == 0 and not report["lost_inodes"], report
        assert report["counts"]["deleted_while_open"] == 2
        inodes = report["counts"]["inodes"]

        # A restarted imgr deletes the orphans once their mount had a mount TTL to come back.
        imgr = deployment.start_imgr({VOLUME: url}, "--mount-ttl", "1")
        deadline = time.monotonic() + 30
        while _inode_count(imgr.http_port) != inodes - 2:
            assert time.monotonic() < deadline, "the orphans were never deleted"
            time.sleep(0.1)
        daemons.stop(imgr.proc)
        code, report = fsck_json(deployment, url)
        assert code == 0 and report["counts"]["inodes"] == inodes - 2, report
        assert report["counts"]["deleted_while_open"] == 0


def _inode_count(port: int) -> int:
    shown = httpx.get(f"http://127.0.0.1:{port}/volume/{VOLUME}", timeout=10).json()
    return shown["inodes"]
