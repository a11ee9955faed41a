"""Where every trio task of a daemon is waiting, for a hung process (SIGUSR1 logs it)."""

from __future__ import annotations

import logging
import signal
import traceback

import trio

log = logging.getLogger(__name__)


def task_stacks() -> str:
    """Each task of this trio run, with the frames it is suspended in."""
    lines: list[str] = []

    def walk(task: trio.lowlevel.Task, depth: int) -> None:
        lines.append("  " * depth + f"task {task.name}")
        frames = [
            f"{f.f_code.co_filename}:{n} {f.f_code.co_name}" for f, n in task.iter_await_frames()
        ]
        lines.extend("  " * depth + "  " + frame for frame in frames)
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child, depth + 1)

    walk(trio.lowlevel.current_root_task(), 0)
    return "\n".join(lines)


async def log_stacks_on_signal() -> None:
    """Run in a daemon's nursery: SIGUSR1 logs every task's stack."""
    with trio.open_signal_receiver(signal.SIGUSR1) as signals:
        async for _ in signals:
            try:
                log.warning("trio tasks:\n%s", task_stacks())
            except Exception:
                log.warning("could not list trio tasks:\n%s", traceback.format_exc())
