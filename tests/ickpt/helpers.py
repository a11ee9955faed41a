"""Workloads shared by the checkpoint store tests."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import trio

from ickpt.store import CheckpointStore, Conflict
from tests.ickpt.writer import value_for

WRITER = Path(__file__).with_name("writer.py")
REPO = Path(__file__).resolve().parents[2]


async def increment(store: CheckpointStore, key: str) -> int:
    """Read-modify-CAS one counter until it succeeds; return the number of conflicts."""
    conflicts = 0
    while True:
        current = await store.get(key)
        version, count = (current[0], int(current[1])) if current else (0, 0)
        try:
            await store.put(key, str(count + 1).encode(), version)
            return conflicts
        except Conflict:
            conflicts += 1


async def run_counter(stores: Sequence[CheckpointStore], key: str, per_writer: int) -> int:
    """Each store gets a writer task doing per_writer increments; return total conflicts."""
    conflicts = [0]

    async def writer(store: CheckpointStore) -> None:
        for _ in range(per_writer):
            conflicts[0] += await increment(store, key)

    async with trio.open_nursery() as nursery:
        for store in stores:
            nursery.start_soon(writer, store)
    return conflicts[0]


async def kill_writer_midway(
    argv: list[str], timeout: float = 20.0, kill_first: Callable[[], None] | None = None
) -> dict[int, int]:
    """Run writer.py, SIGKILL it after a random number of acks; return {index: version}.

    With kill_first, that (e.g. SIGKILL of the daemon the writer talks to) comes first.
    """
    wanted = random.randint(20, 80)
    proc = await trio.lowlevel.open_process(
        [sys.executable, str(WRITER), *argv], stdout=-1, cwd=str(REPO)
    )
    output = b""
    try:
        with trio.fail_after(timeout):
            while output.count(b"\n") < wanted:
                chunk = await proc.stdout.receive_some()
                if not chunk:
                    raise AssertionError(f"writer exited early with {await proc.wait()}")
                output += chunk
            await trio.sleep(random.uniform(0, 0.02))
    finally:
        if kill_first is not None:
            kill_first()
        proc.kill()
        with trio.move_on_after(10):
            await proc.wait()
    with trio.fail_after(5):
        while chunk := await proc.stdout.receive_some():
            output += chunk
    await proc.stdout.aclose()
    lines = output.decode().split("\n")[:-1]  # the last piece is incomplete or empty
    return {int(i): int(v) for i, v in (line.split() for line in lines)}


async def check_acknowledged(store: CheckpointStore, acked: dict[int, int]) -> None:
    """Every acknowledged put of writer.py is there, and at most one more."""
    for index, version in acked.items():
        assert await store.get(f"k{index:06d}") == (version, value_for(index))
    keys = await store.list()
    # At most one put past the last ack can have made it (durable but not yet printed).
    assert len(acked) <= len(keys) <= len(acked) + 1
    assert await store.put("after", b"x", 0) > max(acked.values())
