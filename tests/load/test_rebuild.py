"""A resumed load sends again what an interrupted one recorded but never stored, byte for byte.

The loader records each segment (pieces, heads, digest) before its upload
starts; these tests stop the uploads after a few segments, then resume and
check that the missing segments were built again from the source, that the
volume is whole (fsck, verify), and that a source changed since is refused.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ickpt.config import open_store as open_checkpoints
from layout.naming import object_name
from objfs.load.job import Identity, Job
from objfs.load.pack import SourceChanged
from objfs.load.run import Request, load
from objfs.storage import StorageError, open_store
from tests import daemons

KIB = 1 << 10


class StopsAfter:
    """A store whose uploads fail for good after `puts` of them (a crash, seen from the job)."""

    def __init__(self, inner, puts: int) -> None:
        self.inner, self.puts = inner, puts

    async def put(self, name, data, **flags):
        if self.puts <= 0:
            raise StorageError("stopped on purpose", name)
        self.puts -= 1
        await self.inner.put(name, data, **flags)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def make_tree(root: Path) -> None:
    for d in range(6):
        (root / f"d{d}").mkdir(parents=True)
        for f in range(10):
            (root / f"d{d}" / f"f{f}").write_bytes(os.urandom(100 * KIB + d * f))
    (root / "big").write_bytes(os.urandom(3 << 20))


def request(tmp: Path, url: str) -> Request:
    identity = Identity(str(tmp / "src"), url, "vol")
    return Request(source=tmp / "src", state=tmp / "state", identity=identity, jobs=1,
                   segment_bytes=1 << 20)  # fmt: skip


async def run_load(tmp: Path, url: str, puts: int | None = None) -> None:
    async with (
        open_store(url) as store,
        await open_checkpoints(f"file://{tmp / 'state' / 'ckpt.log'}") as ckpt,
    ):
        await load(request(tmp, url), store if puts is None else StopsAfter(store, puts), ckpt)


def unstored(tmp: Path, url: str) -> list[int]:
    """Segments the job recorded whose objects are not in the file:// container."""
    container = Path(url.removeprefix("file://"))
    job = Job.open(tmp / "state")
    try:
        return [n for n, _, _ in job.segments() if not (container / object_name(n)).exists()]
    finally:
        job.close()


def objfs(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([daemons.command("objfs"), *args], capture_output=True, text=True,
                          timeout=120)  # fmt: skip


async def interrupted(tmp: Path) -> str:
    make_tree(tmp / "src")
    url = f"file://{tmp / 'store'}"
    with pytest.raises(BaseExceptionGroup) as stopped:
        await run_load(tmp, url, puts=2)
    assert stopped.group_contains(StorageError)
    assert unstored(tmp, url), "the job recorded no segment beyond the stored ones"
    return url


async def test_resume_builds_the_unstored_segments_again(tmp_path: Path) -> None:
    url = await interrupted(tmp_path)
    await run_load(tmp_path, url)
    assert unstored(tmp_path, url) == []
    state = str(tmp_path / "state")
    fsck = objfs("fsck", url, "--state", state, "--name", "vol", "--json")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    verify = objfs("verify", str(tmp_path / "src"), url, "--state", state, "--name", "vol")
    assert verify.returncode == 0, verify.stdout + verify.stderr


async def test_a_source_changed_since_is_refused(tmp_path: Path) -> None:
    url = await interrupted(tmp_path)
    job = Job.open(tmp_path / "state")
    number = unstored(tmp_path, url)[0]
    piece = job.pieces_in(number)[0]
    (path,) = job.db.execute("SELECT path FROM inodes WHERE inode = ?", (piece.inode,)).fetchone()
    job.close()
    changed = tmp_path / "src" / os.fsdecode(path)
    before = changed.stat()
    data = bytearray(changed.read_bytes())
    data[piece.file_offset] ^= 0xFF
    changed.write_bytes(bytes(data))
    os.utime(changed, ns=(before.st_atime_ns, before.st_mtime_ns))  # same size and mtime
    with pytest.raises(BaseExceptionGroup) as refused:
        await run_load(tmp_path, url)
    assert refused.group_contains(SourceChanged)
    assert number in unstored(tmp_path, url)
