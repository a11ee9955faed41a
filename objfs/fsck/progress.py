"""One progress line on stderr while fsck or gc runs, only when stderr is a terminal.

Redrawn as the work advances (at most every INTERVAL seconds) rather than by
a task of its own, so no nursery wraps the work and its errors.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

INTERVAL = 0.25


class Progress:
    def __init__(self, out: TextIO | None = None) -> None:
        self.out = sys.stderr if out is None else out
        self.tty = self.out.isatty()
        self.phase = ""
        self.done = 0
        self.total = 0
        self.nbytes = 0
        self._drawn = 0.0

    def start(self, phase: str, total: int) -> None:
        self.phase, self.done, self.total = phase, 0, total
        self._draw()

    def step(self) -> None:
        self.done += 1
        self._draw()

    def read(self, nbytes: int) -> None:
        self.nbytes += nbytes
        self._draw()

    def line(self) -> str:
        of = f"/{self.total}" if self.total else ""
        data = f", {self.nbytes >> 20} MiB read" if self.nbytes else ""
        return f"{self.phase}: {self.done}{of}{data}"

    def _draw(self) -> None:
        now = time.monotonic()
        if self.tty and now - self._drawn >= INTERVAL:
            self._drawn = now
            self.out.write(f"\r\x1b[K{self.line()}"[:200])
            self.out.flush()

    @contextmanager
    def shown(self) -> Iterator[None]:
        """Erase the line at the end, however the work ends."""
        try:
            yield
        finally:
            if self._drawn:
                self.out.write("\r\x1b[K")
                self.out.flush()
