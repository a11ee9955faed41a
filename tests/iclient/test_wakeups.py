"""Busy polling: idle CPUs poll, not halt, while a mount is busy, and go back when it is quiet."""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

import httpx
import trio

from iclient.wakeups import DEVICE, QUIET_WINDOWS, WINDOW, BusyPoll, Meter
from tests.deployment import deployed
from tests.mounts import Mounted, iclient, mountpoint, serve_volume

CPUS = Path("/sys/devices/system/cpu")


def _open_paths(pid: int) -> set[str]:
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            found.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            pass  # closed meanwhile
    return found


async def _ticking(meter: Meter, rate: int, windows: int) -> None:
    """`rate` operations a second, spread over each window, for `windows` windows."""
    steps = 10
    for _ in range(windows * steps):
        for _ in range(round(rate * WINDOW / steps)):
            meter.tick()
        await trio.sleep(WINDOW / steps)


async def test_the_request_is_held_while_busy_and_let_go_when_quiet(autojump_clock, tmp_path):
    device = tmp_path / "cpu_dma_latency"
    device.write_bytes(b"")
    meter = Meter()
    busy = BusyPoll(meter, rate=1000, device=str(device))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(busy.run)
        await _ticking(meter, rate=100, windows=30)  # not busy
        assert not busy.held and busy.holds == 0
        await _ticking(meter, rate=2000, windows=5)
        assert busy.held and busy.holds == 1
        assert struct.unpack("=i", device.read_bytes()) == (0,)
        assert str(device) in _open_paths(os.getpid())
        await _ticking(meter, rate=100, windows=QUIET_WINDOWS - 3)  # a lull is not quiet
        assert busy.held
        await trio.sleep(WINDOW * (QUIET_WINDOWS + 1))
        assert not busy.held and str(device) not in _open_paths(os.getpid())
        await _ticking(meter, rate=2000, windows=3)
        assert busy.held and busy.holds == 2
        nursery.cancel_scope.cancel()
    assert not busy.held


async def test_a_refused_request_stops_busy_polling_and_says_why(autojump_clock, tmp_path):
    meter = Meter()
    busy = BusyPoll(meter, rate=10, device=str(tmp_path / "missing"))
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(busy.run)
            await _ticking(meter, rate=1000, windows=3)
    assert not busy.held and busy.holds == 0  # run returned by itself
    assert busy.refused.endswith("missing: No such file or directory")


def _halts() -> int | None:
    """Times the CPUs entered an idle state deeper than polling; None without cpuidle."""
    states = [s for s in CPUS.glob("cpu[0-9]*/cpuidle/state*") if (s / "name").exists()]
    deep = [s for s in states if (s / "name").read_text().strip() != "POLL"]
    return sum(int((s / "usage").read_text()) for s in deep) if deep else None


def _busy_poll(mounted: Mounted) -> dict:
    url = f"http://127.0.0.1:{mounted.http_port}/stats"
    return httpx.get(url, timeout=10).json()["busy_poll"]


def _stat_each(files: list[Path]) -> None:
    for path in files:
        os.stat(path)
        os.utime(path)  # so that the next stat asks iclient again


def test_a_busy_mount_keeps_idle_cpus_polling_until_it_is_quiet(request, tmp_path):
    with deployed(request, tmp_path) as deployment:
        url, imgr = serve_volume(deployment, "file")
        with mountpoint() as path, iclient(deployment, imgr, url, path) as mounted:
            files = [path / f"f{i}" for i in range(100)]
            for file in files:
                file.write_bytes(b"x")
            deadline = time.monotonic() + 20
            while not _busy_poll(mounted)["held"]:
                assert time.monotonic() < deadline, "a busy mount did not poll"
                _stat_each(files)
            assert DEVICE in _open_paths(mounted.proc.pid)
            halts = _halts()
            for _ in range(20):
                _stat_each(files)
            if halts is not None:  # the kernel honoured it: no CPU halted meanwhile
                assert _halts() == halts
            state = _busy_poll(mounted)
            assert state["held"] and state["holds"] >= 1 and not state["refused"]

            deadline = time.monotonic() + 20
            while _busy_poll(mounted)["held"]:
                assert time.monotonic() < deadline, "busy polling outlived the load"
                time.sleep(0.1)
            assert DEVICE not in _open_paths(mounted.proc.pid)
