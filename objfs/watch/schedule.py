"""When each changed path is synced: once quiet for the settle time, one at a time per path.

A change to a path (re)starts its settle timer, so a burst of writes is one
upload. A path being synced is not handed out again until that sync ends; a
change meanwhile just makes it due again. Renames are applied in the order
they happened, each once no sync is running on the paths it touches, and
before any other path is handed out, so a path is never synced under a name
that a pending rename is about to change.
"""

from __future__ import annotations

import math
from collections import deque

import trio

from objfs.watch.state import under


def _within(path: bytes, top: bytes) -> bool:
    low, high = under(top)
    return path == top or low <= path < high


class Schedule:
    def __init__(self, settle: float) -> None:
        self.settle = settle
        self.due: dict[bytes, float] = {}  # path -> trio time it may be synced
        self.forced: set[bytes] = set()  # paths to sync even if they look unchanged
        self.busy: set[bytes] = set()
        self.moves: deque[tuple[bytes, bytes]] = deque()
        self._changed = trio.Event()

    def touch(self, path: bytes, *, force: bool = False, at: float | None = None) -> None:
        self.due[path] = trio.current_time() + self.settle if at is None else at
        if force:
            self.forced.add(path)
        self._changed.set()

    def move(self, old: bytes, new: bytes) -> None:
        self.moves.append((old, new))
        self._changed.set()

    def done(self, path: bytes) -> None:
        self.busy.discard(path)
        self._changed.set()

    def rebase(self, old: bytes, new: bytes) -> None:
        """Due paths under `old` are under `new` now."""
        for path in [p for p in self.due if _within(p, old)]:
            moved = new + path[len(old) :]
            self.due[moved] = self.due.pop(path)
            if path in self.forced:
                self.forced.discard(path)
                self.forced.add(moved)

    def next_move(self) -> tuple[bytes, bytes] | None:
        """The oldest rename, if no sync runs on the paths it touches."""
        if not self.moves:
            return None
        old, new = self.moves[0]
        if any(_within(path, old) or _within(path, new) for path in self.busy):
            return None
        return self.moves.popleft()

    def take_ready(self) -> list[tuple[bytes, bool]]:
        """Paths quiet long enough and not being synced, now busy; none while renames wait."""
        if self.moves:
            return []
        now = trio.current_time()
        ready = [p for p, at in self.due.items() if at <= now and p not in self.busy]
        taken = []
        for path in sorted(ready):  # a directory before what it holds
            del self.due[path]
            self.busy.add(path)
            taken.append((path, path in self.forced))
            self.forced.discard(path)
        return taken

    async def wait(self) -> None:
        """Until something changed, or the next path falls due."""
        pending = [at for p, at in self.due.items() if p not in self.busy]
        deadline = min(pending, default=math.inf)
        with trio.move_on_at(deadline):
            await self._changed.wait()
        self._changed = trio.Event()

    @property
    def idle(self) -> bool:
        return not self.due and not self.busy and not self.moves
