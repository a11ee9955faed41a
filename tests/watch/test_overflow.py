"""An inotify queue that overflows loses events: the watcher scans the whole tree instead."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.commands.stacks import Leftovers
from tests.watch.watching import serve, watch

MAX_EVENTS = Path("/proc/sys/fs/inotify/max_queued_events")


@contextmanager
def small_inotify_queues(events: int) -> Iterator[None]:
    """inotify instances made meanwhile keep a queue of `events` (the limit is read at init)."""
    before = MAX_EVENTS.read_text()
    MAX_EVENTS.write_text(str(events))
    try:
        yield
    finally:
        MAX_EVENTS.write_text(before)


def test_an_overflowing_queue_is_a_full_rescan(tmp_path: Path, leftovers: Leftovers):
    served = serve(leftovers, tmp_path)
    local = tmp_path / "local"
    local.mkdir()
    with small_inotify_queues(16):
        watcher = watch(leftovers, local, served.target, tmp_path / "wstate", "--settle", "0.2")
    watcher.in_step(local, served.mirror)
    for i in range(300):  # far more events than the queue holds
        (local / f"f{i:03d}").write_bytes(b"%d" % i)
    watcher.in_step(local, served.mirror)
    assert "inotify queue overflowed: scanning the whole tree" in watcher.stop()
