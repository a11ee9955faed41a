"""Fixtures for the RPC tests: the counter server as a real process, stopped by PID."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

COUNTER_SERVER = Path(__file__).resolve().parent / "counter_server.py"
START_DEADLINE = 15.0
STOP_DEADLINE = 5.0


@dataclass
class Process:
    pid: int
    port: int


def _read_port(proc: subprocess.Popen, deadline: float) -> int:
    """The port line the server prints, waiting no longer than the deadline."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
            raise TimeoutError("counter server printed no port in time")
    line = proc.stdout.readline()
    if not line.strip():
        raise RuntimeError(f"counter server exited ({proc.poll()}) without a port")
    return int(line)


def _stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_DEADLINE)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_DEADLINE)


@pytest.fixture(scope="module")
def counter_server() -> Iterator[Process]:
    proc = subprocess.Popen(
        [sys.executable, str(COUNTER_SERVER), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield Process(proc.pid, _read_port(proc, time.monotonic() + START_DEADLINE))
    finally:
        _stop(proc)
        if proc.stdout is not None:
            proc.stdout.close()
