"""What a running load shows: a bar on a terminal, a line every few seconds elsewhere."""

from __future__ import annotations

import io

import trio

from objfs.load import progress
from objfs.load.pack import Tally
from objfs.load.progress import Progress, Totals


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def show_for(seconds: float, shown: Progress) -> None:
    with trio.move_on_after(seconds):
        await shown.show()


async def test_a_log_line_every_few_seconds_when_not_a_terminal(autojump_clock):
    tally, out = Tally(), io.StringIO()
    shown = Progress(Totals(entries=1000, data_bytes=10_000_000), tally, out)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(show_for, progress.LOG_INTERVAL * 3 + 1, shown)
        await trio.sleep(progress.LOG_INTERVAL / 2)
        tally.entries, tally.data_bytes = 400, 4_000_000
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[-1].startswith("objfs load: 400/1000 entries, 4.0/10.0 MB, ")
    assert "files/s" in lines[-1] and "MB/s" in lines[-1] and "ETA 0:00:" in lines[-1]


async def test_a_bar_on_a_terminal(autojump_clock):
    tally, out = Tally(entries=500, data_bytes=5_000_000), Terminal()
    shown = Progress(Totals(entries=1000, data_bytes=10_000_000), tally, out)
    await show_for(1.0, shown)
    drawn = out.getvalue()
    assert "load" in drawn and "%|" in drawn
    assert "500/1000 entries" in drawn and "ETA" in drawn
