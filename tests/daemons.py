"""Starting the project's daemons (ickpt, imgr) as processes, and stopping them by PID."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

READY_TIMEOUT = 20.0


@dataclass
class Daemon:
    proc: subprocess.Popen
    line: str  # the line it printed once it was ready


def interruptible() -> None:
    """Popen's preexec_fn for a child a test will SIGINT as a user's ^C would.

    A shell without job control starts background commands with SIGINT
    ignored, and children inherit that: a ^C test run under such a shell
    (nohup, `make test &`) would otherwise test nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def command(name: str) -> str:
    """The console script `name` of this virtualenv."""
    return str(Path(sys.executable).parent / name)


def start(argv: list[str], ready: str, log: Path | None = None) -> Daemon:
    """Start argv and wait (with a deadline) for its first line, which must start with `ready`.

    A chatty daemon gets `log` for its stderr: a pipe nobody reads would fill and block it.
    """
    stderr = open(log, "w") if log else subprocess.PIPE  # noqa: SIM115 (the child keeps it)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True)
    if log:
        stderr.close()
    try:
        readable, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT)
        line = proc.stdout.readline() if readable else ""
        if not line.startswith(ready):
            err = _stderr(proc, log) if proc.poll() is not None else ""
            raise RuntimeError(f"{argv[0]} did not start: {line!r} {err[-2000:]}")
        return Daemon(proc, line.strip())
    except BaseException:
        stop(proc)
        raise


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
    """Stop by PID (SIGTERM, or `sig`), SIGKILL after a deadline; the exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe:
            pipe.close()
    return proc.returncode


def _stderr(proc: subprocess.Popen, log: Path | None) -> str:
    if log is not None:
        return log.read_text(errors="replace")
    return proc.stderr.read() if proc.stderr else ""
