"""`objfs load` cut short (kill -9, ^C) and run again: it finishes the same volume without
sending again what is stored, and refuses a container that no longer matches its record."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from layout.errors import LayoutError
from layout.naming import object_name, object_number
from tests import daemons
from tests.commands.loadtrees import (
    assert_clean,
    bulk,
    job_query,
    object_sizes,
    objfs_load,
    phase,
    start_load,
    wait_for,
)
from tests.commands.stacks import objfs, one_line_error

KILLS = 10
LOAD = ("--segment-mib", "1")


@pytest.fixture
def big_tree(tmp_path: Path) -> Path:
    """Thousands of files of mixed sizes and some MiB-sized ones: a load takes seconds."""
    root = tmp_path / "src"
    root.mkdir()
    bulk(root, files=8000, big=24)
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Enough for a load to be cut short once it has stored a few segments."""
    root = tmp_path / "src"
    root.mkdir()
    bulk(root, files=1500, big=8)
    return root


def stored_objects(store: Path) -> dict[str, tuple[int, int]]:
    """Object name -> (inode, mtime) of every object file in a file:// store."""
    found = {}
    for entry in os.scandir(store) if store.exists() else ():
        try:
            object_number(entry.name)
        except LayoutError:
            continue
        st = entry.stat()
        found[entry.name] = (st.st_ino, st.st_mtime_ns)
    return found


def assert_not_rewritten(before: dict[str, tuple[int, int]], store: Path) -> None:
    after = stored_objects(store)
    changed = sorted(name for name, seen in before.items() if after.get(name) != seen)
    assert changed == [], f"objects written again or deleted: {changed}"


def assert_whole(src: Path, url: str, *where: str) -> None:
    """The volume (its checkpoint where `where` says) holds the tree; no damage, no orphans."""
    found = objfs("verify", str(src), url, *where)
    assert found.returncode == 0, found.stdout[-3000:] + found.stderr
    assert_clean(url, *where)


def moments(state: Path, tree: Path, rng: random.Random) -> list[tuple[str, Callable[[], bool]]]:
    """Ten random points of one load's progress, in order: one in the scan, eight in the
    pack (after a random number of segments), one at the start of the finish.

    Points of progress, not of time: on a shared machine a run's speed varies too much
    for random delays to land ten kills on one unfinished load.
    """
    entries = sum(1 for _ in tree.rglob("*"))
    segments = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file()) >> 20

    def count(table: str) -> int:
        return int(job_query(state, f"SELECT count(*) FROM {table}") or 0)

    def scanned(n: int) -> Callable[[], bool]:
        return lambda: phase(state) not in (None, "scan") or count("inodes") >= n

    def sealed(n: int) -> Callable[[], bool]:
        return lambda: phase(state) not in (None, "scan", "pack") or count("segments") >= n

    # In the first half: the scan stores its rows in batches (objfs.load.scan.BATCH), so a
    # point in the last batch is reached together with the end of the scan.
    found = [(f"{n} entries scanned", scanned(n)) for n in [rng.randrange(1, entries // 2)]]
    found += [(f"{n} segments", sealed(n)) for n in sorted(rng.sample(range(1, segments), 8))]
    found.append(("the finish", lambda: phase(state) in ("finish", "done")))
    return found


def test_kill_9_at_random_moments_then_resume(big_tree: Path, tmp_path: Path):
    tree = big_tree
    store, state, manifest = tmp_path / "store", tmp_path / "state", tmp_path / "manifest.jsonl"
    url, args = f"file://{store}", (*LOAD, "--manifest", str(manifest))
    seed = random.randrange(1 << 32)
    phases = []
    for what, reached in moments(state, tree, random.Random(seed)):
        before = stored_objects(store)
        loader = start_load(tree, url, state, *args)
        try:
            wait_for(f"{what} (seed {seed})", reached, loader)
        finally:
            loader.send_signal(signal.SIGKILL)
            loader.communicate()
        phases.append(phase(state))
        assert_not_rewritten(before, store)
    assert len(phases) == KILLS
    assert "scan" in phases and "pack" in phases, f"{phases} (seed {seed})"
    assert "done" not in phases[:-1], f"{phases} (seed {seed})"

    before = stored_objects(store)
    final = objfs_load(tree, url, state, *args)
    assert final.returncode == 0, final.stderr
    assert final.stderr == ""
    assert_not_rewritten(before, store)
    assert_whole(tree, url, "--state", str(state))
    assert manifest.exists()  # written by the run that finished (test_load.py checks them)


def uploading(tree: Path, url: str, state: Path) -> subprocess.Popen:
    """A load that has stored a few segments and has more to go."""
    loader = start_load(tree, url, state, *LOAD)
    uploaded = "SELECT count(*) FROM segments WHERE uploaded = 1"
    try:
        wait_for("two uploaded segments", lambda: (job_query(state, uploaded) or 0) >= 2, loader)
    except BaseException:
        loader.kill()
        loader.communicate()
        raise
    return loader


def test_ctrl_c_exits_130_and_the_load_resumes(tree: Path, tmp_path: Path):
    store, state = tmp_path / "store", tmp_path / "state"
    url = f"file://{store}"
    loader = uploading(tree, url, state)
    loader.send_signal(signal.SIGINT)
    out, err = loader.communicate(timeout=60)
    assert loader.returncode == 130, err
    assert err.splitlines() == ["objfs load: interrupted"]
    assert phase(state) == "pack"

    before = stored_objects(store)
    resumed = objfs_load(tree, url, state, *LOAD)
    assert resumed.returncode == 0, resumed.stderr
    assert_not_rewritten(before, store)
    assert_whole(tree, url, "--state", str(state))


def test_a_resume_refuses_a_container_that_does_not_match(tree: Path, tmp_path: Path):
    store, state = tmp_path / "store", tmp_path / "state"
    url = f"file://{store}"
    loader = uploading(tree, url, state)
    loader.kill()
    loader.communicate()
    stored = object_sizes(url)

    uploaded = job_query(state, "SELECT min(number) FROM segments WHERE uploaded = 1")
    foreign = store / object_name(1 << 40)
    shutil.copyfile(store / object_name(uploaded), foreign)
    refused = objfs_load(tree, url, state, *LOAD)
    assert "did not write" in one_line_error(refused)
    assert refused.returncode == 2
    assert object_sizes(url) == {**stored, foreign.name: stored[object_name(uploaded)]}
    foreign.unlink()

    (store / object_name(uploaded)).unlink()
    refused = objfs_load(tree, url, state, *LOAD)
    assert "lacks" in one_line_error(refused)
    assert refused.returncode == 2
    del stored[object_name(uploaded)]
    assert object_sizes(url) == stored
    assert phase(state) == "pack"


@contextmanager
def ickpt(log: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """A running ickpt on the checkpoint log `log`: its process and HOST:PORT."""
    argv = [daemons.command("ickpt"), "--port", "0", "--store", f"file://{log}"]
    started = daemons.start(argv, "ickpt listening on ")
    try:
        yield started.proc, started.line.rsplit(" ", 1)[1]
    finally:
        started.proc.send_signal(signal.SIGCONT)
        daemons.stop(started.proc)


def unread_by(port: int) -> int:
    """Bytes received and not yet read on the TCP connections to local `port`."""
    unread = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":  # established
            unread += int(fields[4].split(":")[1], 16)
    return unread


@pytest.mark.parametrize("swap", ["lost", "done"])
def test_a_load_killed_while_its_checkpoint_is_swapped(tree: Path, tmp_path: Path, swap: str):
    """Killed once the volume's checkpoint segment is stored, its swap sent to a stopped
    ickpt; the swap is then lost (that ickpt killed) or done (it goes on). Either way the
    resumed load must neither store that segment again nor leave the volume without the
    backup of its checkpoint in object 0."""
    store, state, log = tmp_path / "store", tmp_path / "state", tmp_path / "ckpt.log"
    url = f"file://{store}"
    with ickpt(log) as (service, address):
        loader = start_load(tree, url, state, *LOAD, "--ickpt", address)
        query = "SELECT value FROM job WHERE key = 'checkpoint_object'"
        try:
            wait_for("the checkpoint's number", lambda: job_query(state, query) is not None, loader)
            service.send_signal(signal.SIGSTOP)
            segment = store / object_name(int(job_query(state, query)))
            wait_for("the checkpoint segment", segment.exists, loader)
            port = int(address.rsplit(":", 1)[1])
            wait_for("the swap request", lambda: unread_by(port) > 0, loader)
        finally:
            loader.kill()
            loader.communicate()
        empty = log.stat().st_size
        if swap == "done":
            service.send_signal(signal.SIGCONT)
            wait_for("the swap", lambda: log.stat().st_size > empty, service)
            _resume_whole(tree, store, state, address)
            return
        service.kill()
        service.wait()
    with ickpt(log) as (_, address):
        _resume_whole(tree, store, state, address)


def _resume_whole(tree: Path, store: Path, state: Path, address: str) -> None:
    """The resumed load finishes without storing anything again, backup included."""
    url = f"file://{store}"
    before = stored_objects(store)
    resumed = objfs_load(tree, url, state, *LOAD, "--ickpt", address)
    assert resumed.returncode == 0, resumed.stderr
    assert_whole(tree, url, "--ickpt", address)
    assert_not_rewritten(before, store)
    assert (store / object_name(0)).exists(), "no backup of the checkpoint in object 0"
