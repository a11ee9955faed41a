"""The daemons a benchmark starts: ready when they print their first line, stopped by PID."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from objfs import runtime

READY_SECONDS = 60.0  # a daemon must say it listens within this
STOP_SECONDS = 60.0  # SIGTERM, then SIGKILL after this (imgr writes a last checkpoint)


def stop(proc: subprocess.Popen, name: str) -> None:
    """SIGTERM, wait up to STOP_SECONDS, then SIGKILL; complain unless it exited 0."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            print(f"bench: {name} (pid {proc.pid}) ignored SIGTERM; killing", file=sys.stderr)
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()
    if proc.returncode != 0:
        print(f"bench: {name} (pid {proc.pid}) exited {proc.returncode}", file=sys.stderr)


def start(
    stack: ExitStack, name: str, argv: list[str], prefix: str, stderr_path: str
) -> tuple[subprocess.Popen, str]:
    """Start argv, stopped by PID when `stack` closes; its first line, which starts `prefix`.

    RuntimeError, with the end of its stderr, if it does not say so in time.
    """
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr
        )
    stack.callback(stop, proc, name)
    text = _first_line(proc)
    if not text.startswith(prefix):
        with open(stderr_path, errors="replace") as f:
            log = f.read()[-4000:]
        raise RuntimeError(f"{name} did not start (stdout {text!r}, exit {proc.poll()}):\n{log}")
    return proc, text


def _first_line(proc: subprocess.Popen) -> str:
    line = b""
    deadline = time.monotonic() + READY_SECONDS
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([proc.stdout], [], [], remaining)[0]:
            break
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        line += chunk
    return line.decode(errors="replace").strip()


@contextmanager
def objfs_mount(url: str, mountpoint: Path, workdir: Path) -> Iterator[int]:
    """`objfs mount` of the volume at `url` at `mountpoint`; yields iclient's PID.

    `workdir` is the stack's state dir: the volume is formatted on first use
    and mounted again as it is when the same `url` and `workdir` come back (a
    remount for cold reads). Leaving runs `objfs umount`, which returns once
    everything is stored; the daemons are stopped by PID if it fails.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    objfs = _script("objfs")
    argv = [objfs, "mount", url, str(mountpoint), "--state", str(workdir)]
    mounted = subprocess.run(argv, capture_output=True, text=True, timeout=4 * READY_SECONDS)
    if mounted.returncode != 0:
        raise RuntimeError(f"objfs mount failed: {mounted.stderr.strip()}")
    entry = runtime.find(str(mountpoint.resolve()))
    if entry is None:
        raise RuntimeError(f"objfs mount left no registry entry for {mountpoint}")
    try:
        yield entry.pids["iclient"]
    finally:
        stopped = subprocess.run([objfs, "umount", str(mountpoint)], capture_output=True, text=True)
        if stopped.returncode != 0:
            print(f"bench: objfs umount failed: {stopped.stderr.strip()}", file=sys.stderr)
            for pid in (entry.pid, *entry.pids.values()):
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _script(name: str) -> str:
    return str(Path(sys.executable).parent / name)
