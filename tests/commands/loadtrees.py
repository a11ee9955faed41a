"""Source trees for the `objfs load` tests, and running the loader on them.

`every_kind` makes one entry of every kind the loader handles and returns
what a mount of the loaded volume must show beyond what `objfs verify`
compares (atimes, one inode for hard links, the sparse file's size);
`bulk` makes a tree big enough for a load to take seconds.
"""

from __future__ import annotations

import json
import os
import random
import socket
import sqlite3
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from objfs.storage import NotFound, open_store
from tests import daemons
from tests.commands.stacks import objfs

MIB = 1 << 20
ODD_NAME = b"na\xefve-\xff"  # not UTF-8
SPARSE_BYTES = 64 * MIB
ATIME_NS = 1_500_000_000_123_456_789
MTIME_NS = 1_400_000_000_987_654_321
DEADLINE = 120.0


@dataclass(frozen=True)
class EveryKind:
    """What to check on a mount besides `objfs verify SRC MNT`."""

    atimes: dict[str, int]  # relative path -> the atime set on it
    hard_links: tuple[str, ...]  # paths of one file with as many links
    sparse: str


def every_kind(root: Path) -> EveryKind:
    """Contents, nested and empty dirs, hard links, symlinks, a sparse file, special files,
    odd modes and owners, set times, user xattrs and a non-UTF-8 name, under `root`."""
    (root / "nested" / "deeper" / "deepest").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "empty").write_bytes(b"")
    (root / "small.txt").write_text("hello objfs load\n")
    (root / "nested" / "deeper" / "data").write_bytes(random.Random(1).randbytes(3 * MIB + 7))
    (root / "nested" / "deeper" / "deepest" / "leaf").write_bytes(b"leaf\n" * 1000)
    hard = ("nested/deeper/data", "nested/hard", "hard-too")
    for path in hard[1:]:
        os.link(root / hard[0], root / path)
    with open(root / "sparse", "wb") as f:
        f.write(b"head")
        f.seek(SPARSE_BYTES // 2)
        f.write(b"middle")
        f.truncate(SPARSE_BYTES)
    os.symlink("nested/deeper/data", root / "relative-link")
    os.symlink("/nowhere/at/all", root / "dangling-link")
    _special_files(root)
    (root / "setuid").write_bytes(b"#!/bin/sh\n")
    (root / "setgid-dir").mkdir()
    (root / "sticky-dir").mkdir()
    (root / "private").write_bytes(b"secret")
    os.chown(root / "setuid", 1234, 5678)
    os.chown(root / "private", 4321, 0)
    os.chown(root / "setgid-dir", 0, 5678)
    os.chmod(root / "setuid", 0o4755)  # after chown, which clears it
    os.chmod(root / "setgid-dir", 0o2750)
    os.chmod(root / "sticky-dir", 0o1777)
    os.chmod(root / "private", 0o600)
    os.setxattr(root / "small.txt", "user.colour", b"blue")
    os.setxattr(root / "nested", "user.binary", bytes(range(256)))
    os.setxattr(root / "empty", "user.empty", b"")
    (root / os.fsdecode(ODD_NAME)).write_bytes(b"odd name")
    atimes = {"small.txt": ATIME_NS, "nested/deeper/data": ATIME_NS + 1, "empty": ATIME_NS + 2}
    for path, atime in atimes.items():
        os.utime(root / path, ns=(atime, MTIME_NS))
    os.utime(root / "relative-link", ns=(ATIME_NS, MTIME_NS), follow_symlinks=False)
    os.utime(root / "nested" / "deeper", ns=(ATIME_NS, MTIME_NS))  # after its last entry
    return EveryKind(atimes, hard, "sparse")


def _special_files(root: Path) -> None:
    os.mkfifo(root / "fifo")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "socket"))
    os.mknod(root / "char-dev", stat.S_IFCHR | 0o620, os.makedev(1, 3))
    os.mknod(root / "block-dev", stat.S_IFBLK | 0o660, os.makedev(7, 200))


def bulk(root: Path, files: int = 3000, big: int = 4, seed: int = 8) -> None:
    """`files` small files of mixed sizes in nested dirs, and `big` MiB-sized ones."""
    rng = random.Random(seed)
    for i in range(files):
        folder = root / f"d{i % 40:02d}" / f"e{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05d}").write_bytes(rng.randbytes(rng.choice((0, 10, 700, 5000, 20000))))
    for i in range(big):
        (root / f"big{i}").write_bytes(rng.randbytes(3 * MIB + i))


def objfs_load(
    src: Path, url: str, state: Path, *extra: str, **popen: object
) -> subprocess.CompletedProcess:
    argv = [daemons.command("objfs"), "load", str(src), url, "--state", str(state), *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, **popen)


def start_load(src: Path, url: str, state: Path, *extra: str) -> subprocess.Popen:
    """The loader as a process a test may interrupt (^C is not ignored in it)."""
    argv = [daemons.command("objfs"), "load", str(src), url, "--state", str(state), *extra]
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=daemons.interruptible,
    )


def job_query(state: Path, query: str) -> object:
    """The first column of the first row of `query` in the job database; None before it is."""
    try:
        db = sqlite3.connect(f"file:{state / 'load.db'}?mode=ro", uri=True, timeout=10)
    except sqlite3.OperationalError:
        return None
    try:
        row = db.execute(query).fetchone()
    except sqlite3.OperationalError:  # no tables yet
        return None
    finally:
        db.close()
    return None if row is None else row[0]


def phase(state: Path) -> str | None:
    value = job_query(state, "SELECT value FROM job WHERE key = 'phase'")
    return None if value is None else str(value).strip('"')


def wait_for(what: str, condition: Callable[[], bool], proc: subprocess.Popen) -> None:
    """Until `condition()` holds, while `proc` runs; fail after a deadline or if it ends."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the loader ended ({proc.returncode}) before {what}")
        assert time.monotonic() < deadline, f"no {what} in {DEADLINE} s"
        time.sleep(0.001)


def object_sizes(url: str) -> dict[str, int]:
    """Name -> size of every object in the container at `url` ({} when there is none)."""

    async def listed() -> dict[str, int]:
        async with open_store(url) as store:
            try:
                return {info.name: info.size async for info in store.list()}
            except NotFound:  # no container yet: nothing in it
                return {}

    return trio.run(listed)


def assert_clean(url: str, *where: str) -> None:
    """`objfs fsck` finds neither damage nor orphans in the volume (`where`: its checkpoint)."""
    checked = objfs("fsck", url, *where, "--json")
    report = json.loads(checked.stdout)
    assert checked.returncode == 0, report
    assert report["result"] == "clean", report
    assert report["orphan_objects"] == [] and report["problems"] == [], report
