"""inotify over a whole tree: every directory watched, new ones as they appear.

Events become `Change`s on paths relative to the root:

- `dirty`: the path (may have) changed; also every path inside a directory
  that was created or moved in, since files can land in it before its
  watch is added;
- `gone`: the path was deleted, or moved out of the tree;
- `moved`: a rename inside the tree (MOVED_FROM and MOVED_TO with one
  cookie in one read); a directory's watches follow it;
- `rescan`: the kernel's queue overflowed and events were lost: only a full
  scan can tell what changed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import trio
from inotify_simple import INotify
from inotify_simple import flags as f

log = logging.getLogger(__name__)

MASK = (
    f.CREATE | f.CLOSE_WRITE | f.MODIFY | f.ATTRIB | f.MOVED_FROM | f.MOVED_TO | f.DELETE
    | f.DONT_FOLLOW | f.EXCL_UNLINK | f.ONLYDIR
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Change:
    kind: str  # dirty, gone, moved, rescan
    path: bytes = b""
    to: bytes = b""  # moved: the new path


def join(directory: bytes, name: bytes) -> bytes:
    return directory + b"/" + name if directory else name


class TreeWatch:
    def __init__(self, root: bytes) -> None:
        self.root = root
        self.inotify = INotify(nonblocking=True)
        self.paths: dict[int, bytes] = {}  # watch descriptor -> directory
        self.dirs: dict[bytes, int] = {}

    def close(self) -> None:
        self.inotify.close()

    def local(self, path: bytes) -> bytes:
        return os.path.join(self.root, path) if path else self.root

    def watch_tree(self, top: bytes) -> list[bytes]:
        """Watch `top` and every directory below it; every path found below it."""
        found = []
        stack = [top]
        while stack:
            directory = stack.pop()
            try:
                wd = self.inotify.add_watch(self.local(directory), MASK)
            except OSError as exc:  # gone already, or not a directory any more
                log.debug("no watch on %r: %s", directory, exc)
                continue
            self.paths[wd], self.dirs[directory] = directory, wd
            try:
                with os.scandir(self.local(directory)) as entries:
                    for entry in entries:
                        path = join(directory, os.fsencode(entry.name))
                        found.append(path)
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(path)
            except OSError as exc:
                log.debug("not listed: %r: %s", directory, exc)
        return found

    def _unwatch_tree(self, top: bytes) -> None:
        low, high = top + b"/", top + b"0"
        for directory in [d for d in self.dirs if d == top or low <= d < high]:
            wd = self.dirs.pop(directory)
            self.paths.pop(wd, None)
            try:
                self.inotify.rm_watch(wd)
            except OSError:
                pass  # the kernel dropped it already

    def _rebase(self, old: bytes, new: bytes) -> None:
        low, high = old + b"/", old + b"0"
        for directory in [d for d in self.dirs if d == old or low <= d < high]:
            wd = self.dirs.pop(directory)
            moved = new + directory[len(old) :]
            self.paths[wd], self.dirs[moved] = moved, wd

    async def changes(self) -> AsyncIterator[list[Change]]:
        """Forever: the changes of each batch of events the kernel has."""
        while True:
            await trio.lowlevel.wait_readable(self.inotify.fileno())
            events = self.inotify.read(timeout=0)
            if events:
                yield self._translate(events)

    def _translate(self, events: list) -> list[Change]:
        changes: list[Change] = []
        moving: dict[int, tuple[bytes, bool]] = {}  # cookie -> (from, is a directory)
        for event in events:
            if event.mask & f.Q_OVERFLOW:
                changes.append(Change("rescan"))
                continue
            directory = self.paths.get(event.wd)
            if event.mask & f.IGNORED:
                if directory is not None:
                    self.paths.pop(event.wd, None)
                    self.dirs.pop(directory, None)
                continue
            if directory is None:
                continue
            path = join(directory, os.fsencode(event.name)) if event.name else directory
            is_dir = bool(event.mask & f.ISDIR)
            if event.mask & f.MOVED_FROM:
                moving[event.cookie] = (path, is_dir)
            elif event.mask & f.MOVED_TO and event.cookie in moving:
                old, _ = moving.pop(event.cookie)
                if is_dir:
                    self._rebase(old, path)
                changes.append(Change("moved", old, path))
            elif event.mask & (f.MOVED_TO | f.CREATE) and is_dir:
                changes.append(Change("dirty", path))
                changes += [Change("dirty", found) for found in self.watch_tree(path)]
            elif event.mask & f.DELETE:
                changes.append(Change("gone", path))
            else:
                changes.append(Change("dirty", path))
        for old, is_dir in moving.values():  # moved out of the tree
            if is_dir:
                self._unwatch_tree(old)
            changes.append(Change("gone", old))
        return changes
