"""What a running load shows: a progress bar on a terminal, a log line every few seconds elsewhere.

The work is counted in bytes: a file's data, plus a fixed weight per entry so
that a tree of many small files moves the bar (and its ETA) as much as its
per-file cost does.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from typing import TextIO

import trio
from tqdm import tqdm

from objfs.load.pack import Tally

log = logging.getLogger(__name__)

ENTRY_WEIGHT = 16 << 10  # bytes of work one entry stands for
TTY_INTERVAL = 0.2
LOG_INTERVAL = 5.0


@dataclass(frozen=True, slots=True)
class Totals:
    entries: int
    data_bytes: int


class Progress:
    def __init__(self, totals: Totals, tally: Tally, out: TextIO | None = None) -> None:
        self.totals, self.tally = totals, tally
        self.out = sys.stderr if out is None else out
        self.started = time.monotonic()
        self._first = (tally.entries, tally.data_bytes)  # done by an earlier run

    def line(self) -> str:
        """e.g. `1200/100000 entries, 4.9/410.0 MB, 3012 files/s, 12.3 MB/s, ETA 0:00:33`."""
        entries, nbytes = self.tally.entries, self.tally.data_bytes
        seconds = max(time.monotonic() - self.started, 1e-3)
        rate_entries = (entries - self._first[0]) / seconds
        rate_bytes = (nbytes - self._first[1]) / seconds
        work_rate = rate_entries * ENTRY_WEIGHT + rate_bytes
        left = (self.totals.entries - entries) * ENTRY_WEIGHT + self.totals.data_bytes - nbytes
        eta = _clock(left / work_rate) if work_rate > 0 else "?"
        return (
            f"{entries}/{self.totals.entries} entries, {nbytes / 1e6:.1f}/"
            f"{self.totals.data_bytes / 1e6:.1f} MB, {rate_entries:.0f} files/s, "
            f"{rate_bytes / 1e6:.1f} MB/s, ETA {eta}"
        )

    async def show(self) -> None:
        """Until cancelled: a bar on a terminal, else a line every LOG_INTERVAL seconds."""
        if not self.out.isatty():
            while True:
                await trio.sleep(LOG_INTERVAL)
                print(f"objfs load: {self.line()}", file=self.out, flush=True)
        work = self.totals.entries * ENTRY_WEIGHT + self.totals.data_bytes
        with tqdm(total=work, file=self.out, bar_format="{l_bar}{bar}| {postfix}") as bar:
            bar.set_description("load")
            while True:
                done = self.tally.entries * ENTRY_WEIGHT + self.tally.data_bytes
                bar.update(done - bar.n)
                bar.set_postfix_str(self.line(), refresh=True)
                await trio.sleep(TTY_INTERVAL)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
