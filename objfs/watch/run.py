"""A running watch: inotify events in, the scheduler in the middle, parallel syncs out.

Tasks of one nursery: the events reader (changes into the schedule, a full
rescan on queue overflow), the dispatcher (renames in order, settled paths
to the workers), `jobs` workers (one path each; a failure is recorded with
its error and the path retried with back-off), the recorder (every second,
what was synced is made durable and then recorded), and the status server.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass

import trio

from objfs.watch.events import Change, TreeWatch, join
from objfs.watch.schedule import Schedule
from objfs.watch.state import WatchState
from objfs.watch.sync import Syncer, Unsettled

log = logging.getLogger(__name__)

DURABLE_EVERY = 1.0  # seconds between commits of what was synced
FIRST_RETRY = 1.0


@dataclass(frozen=True)
class Options:
    settle: float = 2.0
    jobs: int = 8
    delete: bool = False
    retry_max: float = 300.0


class Watch:
    def __init__(self, root: bytes, syncer: Syncer, state: WatchState, options: Options) -> None:
        self.root, self.syncer, self.state, self.options = root, syncer, state, options
        self.recorder = syncer.recorder
        self.schedule = Schedule(options.settle)
        self.tree = TreeWatch(root)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.tree.watch_tree(b"")  # before the scan: nothing changed meanwhile is missed
        try:
            await self.rescan()
            send, receive = trio.open_memory_channel[tuple[bytes, bool]](0)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._events)
                nursery.start_soon(self._dispatch, send)
                for _ in range(self.options.jobs):
                    nursery.start_soon(self._work, receive.clone())
                nursery.start_soon(self._keep_durable)
                task_status.started()
        finally:
            self.tree.close()

    async def rescan(self) -> None:
        """Every path that differs from what the state recorded, due at once."""
        changed = await trio.to_thread.run_sync(self._differences)
        now = trio.current_time()
        for path in changed:
            self.schedule.touch(path, at=now)
        log.info("scan: %d paths to sync", len(changed))

    def _differences(self) -> list[bytes]:
        known = dict(self.state.all_synced())
        seen = {b""}
        changed = [b""] if b"" not in known else []
        stack = [b""]
        while stack:
            directory = stack.pop()
            try:
                with os.scandir(self.syncer.local(directory)) as entries:
                    listed = [(join(directory, os.fsencode(e.name)), e) for e in entries]
            except OSError:
                changed.append(directory)  # retried (and named) by its sync
                continue
            for path, entry in listed:
                seen.add(path)
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append(path)
                was = known.get(path)
                if was is None or (was.size, was.mtime_ns, was.ctime_ns, was.ino) != (
                    st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino):  # fmt: skip
                    changed.append(path)
        if self.options.delete:
            changed += [path for path in known if path not in seen]
        return changed

    async def _events(self) -> None:
        async for changes in self.tree.changes():
            for change in changes:
                await self._note(change)

    async def _note(self, change: Change) -> None:
        if change.kind == "rescan":
            log.warning("inotify queue overflowed: scanning the whole tree")
            await self.rescan()
        elif change.kind == "moved":
            self.schedule.move(change.path, change.to)
        else:  # dirty, gone: the sync looks at what is there
            self.schedule.touch(change.path)

    async def _dispatch(self, send: trio.MemorySendChannel[tuple[bytes, bool]]) -> None:
        schedule = self.schedule
        while True:
            move = schedule.next_move()
            if move is not None:
                await self._move(*move)
                continue
            for item in schedule.take_ready():
                await send.send(item)
            await schedule.wait()

    async def _move(self, old: bytes, new: bytes) -> None:
        self.schedule.rebase(old, new)
        moved = False
        if self.recorder.synced(old) is not None:
            moved = await self.syncer.target.move(old, new)
        if moved:
            await self.recorder.moved(old, new)
        # What is at `new` now may differ from what moved (or nothing moved): look at it all.
        for path in [new, *await trio.to_thread.run_sync(self._below, new)]:
            self.schedule.touch(path)
        parents = {old.rpartition(b"/")[0], new.rpartition(b"/")[0]}
        for parent in parents:
            self.schedule.touch(parent, force=True)

    def _below(self, path: bytes) -> list[bytes]:
        found = []
        for directory, dirs, files in os.walk(self.syncer.local(path)):
            relative = directory[len(self.root) + 1 :] if directory != self.root else b""
            found += [join(relative, name) for name in dirs + files]
        return found

    async def _work(self, receive: trio.MemoryReceiveChannel[tuple[bytes, bool]]) -> None:
        async for path, force in receive:
            try:
                for parent in await self.syncer.sync(path, force):
                    self.schedule.touch(parent, force=True)
                self.state.succeeded(path)
            except Unsettled as exc:
                log.info("%s; again once it is quiet", exc)
                self.schedule.touch(path)
            except Exception as exc:  # every failure is recorded, named and retried
                self._failed(path, exc)
            finally:
                self.schedule.done(path)

    def _failed(self, path: bytes, exc: Exception) -> None:
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
        delay = min(self.options.retry_max, FIRST_RETRY * 2 ** self.state.attempts(path))
        failure = self.state.failed(path, message, delay)
        log.warning("%s not synced (attempt %d, again in %.0fs): %s",
                    os.fsdecode(path) or ".", failure.attempts, delay, message)  # fmt: skip
        self.schedule.touch(path, at=trio.current_time() + delay)

    async def _keep_durable(self) -> None:
        while True:
            await trio.sleep(DURABLE_EVERY)
            await self.recorder.durable()
