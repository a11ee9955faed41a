"""kill -9 of `objfs watch` in the middle of a large upload: a reader of the file on a mount
sees the old bytes or the new ones, never a part; a restart converges and leaves no temp."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

from tests.commands.stacks import Leftovers
from tests.watch.watching import serve, temps_in, watch

MIB = 1 << 20
ARGS = ["--settle", "0.2", "--retry-max", "1"]


class Reader(threading.Thread):
    """Reads `path` whole, again and again, and keeps the hash of each read."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.hashes, self.stopping = path, [], threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                with open(self.path, "rb") as f:
                    self.hashes.append(hashlib.file_digest(f, "sha256").hexdigest())
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def stop(self) -> list[str]:
        self.stopping.set()
        self.join(120)
        assert not self.is_alive() and self.error is None, self.error
        return self.hashes


def pending_temps(state: Path) -> list[bytes]:
    """The temporary names the watcher's state lists: uploads it had not finished."""
    with closing(sqlite3.connect(state / "watch.db")) as db:
        return [path for (path,) in db.execute("SELECT path FROM temps")]


def test_kill_mid_upload_shows_old_or_new_and_converges(tmp_path, leftovers: Leftovers):
    served = serve(leftovers, tmp_path)
    local, state = tmp_path / "local", tmp_path / "wstate"
    local.mkdir()
    old, new = os.urandom(4 * MIB), os.urandom(200 * MIB)
    hashes = {hashlib.sha256(old).hexdigest(): "old", hashlib.sha256(new).hexdigest(): "new"}
    (local / "big").write_bytes(old)
    (tmp_path / "next").write_bytes(new)
    # Slow requests make the upload last long enough for the kill to land in its middle.
    slow = f"{served.url}?fault_latency=0.3:{served.path}"
    watcher = watch(leftovers, local, slow, state, *ARGS)
    watcher.in_step(local, served.mirror)
    start = watcher.stats()["data_bytes"]

    reader = Reader(served.mirror / "big")
    reader.start()
    try:
        os.rename(tmp_path / "next", local / "big")  # the new content, whole at once
        watcher.wait("the upload half-way, under its temp name",
                     lambda: watcher.stats()["data_bytes"] - start >= 64 * MIB)  # fmt: skip
        watcher.kill()
        assert pending_temps(state) != []  # the kill interrupted the upload
        watcher = watch(leftovers, local, slow, state, *ARGS)
        watcher.in_step(local, served.mirror)
        newest = hashlib.sha256(new).hexdigest()
        watcher.wait("the new content read", lambda: reader.hashes[-1:] == [newest])
    finally:
        seen = reader.stop()
    assert {hashes.get(h, h) for h in seen} == {"old", "new"}, "a read saw a partial file"
    assert temps_in(served.mirror) == []
    watcher.stop()
    served.stop()
    stored = served.verify_stored(local)
    assert stored.returncode == 0, stored.stdout + stored.stderr
