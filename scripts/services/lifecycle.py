"""start / stop / status of one service instance living in a directory."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from common import (
    LOCK_FILE,
    SERVICE_FILE,
    STATE_FILE,
    Kind,
    Options,
    ServiceError,
    Waiter,
    check_ports_free,
    live_pgids,
    log_tail,
    owned_group,
    pick_ports,
    read_json,
    spawn,
    start_time,
    terminate_groups,
    write_json,
)

log = logging.getLogger("services")

STOP_GRACE = 10.0
# Directories and files the scripts create in DIR; purge removes exactly these.
PURGE_DIRS = ("conf", "data")
PURGE_GLOBS = ("*.log", "*.pid", "*.tmp", STATE_FILE, SERVICE_FILE, LOCK_FILE)


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    # Serialises start/stop on one DIR, e.g. a test teardown racing a manual stop.
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / LOCK_FILE, "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        yield


def load_state(kind: Kind, directory: Path) -> dict | None:
    state = read_json(directory / STATE_FILE)
    if state is not None and state.get("kind") != kind.name:
        raise ServiceError(f"{directory} holds a {state.get('kind')!r} instance, not {kind.name}")
    return state


def live_groups(state: dict | None) -> dict[str, int]:
    if not state:
        return {}
    procs, pgids = state.get("procs", {}), live_pgids()
    live = {name: owned_group(proc, pgids) for name, proc in procs.items()}
    return {name: pgid for name, pgid in live.items() if pgid is not None}


def pid_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.pid"))


def start(kind: Kind, directory: Path, opts: Options) -> str:
    with locked(directory):
        state = load_state(kind, directory)
        running = live_groups(state)
        if running:
            pids = ", ".join(f"{name}={pid}" for name, pid in running.items())
            raise ServiceError(f"already running in {directory} ({pids}); stop it first")
        fresh = state is None
        if fresh:
            state = {"kind": kind.name, "ports": pick_ports(kind.port_names), "procs": {}}
            state.update(kind.new_state(directory, opts))
            write_json(directory / STATE_FILE, state)
        else:
            check_ports_free(state["ports"])
        try:
            return _launch(kind, directory, state, opts)
        except BaseException:
            if fresh:
                _discard(kind, directory, state)
            raise


def _launch(kind: Kind, directory: Path, state: dict, opts: Options) -> str:
    began = time.monotonic()
    specs = kind.prepare(directory, state, opts)
    procs: dict[str, subprocess.Popen] = {}
    try:
        for spec in specs:
            proc = spawn(directory, spec)
            procs[spec.name] = proc
            (directory / f"{spec.name}.pid").write_text(f"{proc.pid}\n")
            state["procs"][spec.name] = {"pid": proc.pid, "start_time": start_time(proc.pid)}
            # Recorded at once so that `stop` can clean up a start killed half-way.
            write_json(directory / STATE_FILE, state)
        kind.wait_ready(state, Waiter(procs, opts.timeout or kind.start_timeout))
    except BaseException as exc:
        _kill_started(directory, state)
        if isinstance(exc, ServiceError):
            tail = log_tail(directory, list(procs))
            if tail:
                print(tail, file=sys.stderr)
        raise
    text = write_json(directory / SERVICE_FILE, kind.info(state))
    log.info("%s ready in %.2f s (%s)", kind.name, time.monotonic() - began, directory)
    return text


def _kill_started(directory: Path, state: dict) -> None:
    with contextlib.suppress(ServiceError):
        terminate_groups(list(live_groups(state).values()), grace=2.0)
    _forget_processes(directory, state)


def _forget_processes(directory: Path, state: dict) -> None:
    for path in pid_files(directory):
        path.unlink(missing_ok=True)
    (directory / SERVICE_FILE).unlink(missing_ok=True)
    state["procs"] = {}
    if (directory / STATE_FILE).exists():
        write_json(directory / STATE_FILE, state)


def stop(kind: Kind, directory: Path, opts: Options) -> None:
    if not directory.is_dir():
        return
    with locked(directory):
        state = load_state(kind, directory)
        if state is not None:
            terminate_groups(list(live_groups(state).values()), opts.timeout or STOP_GRACE)
            _forget_processes(directory, state)
        else:
            for path in pid_files(directory):
                path.unlink(missing_ok=True)
        if opts.purge:
            _purge(kind, directory, state or {})
    if opts.purge:
        with contextlib.suppress(OSError):
            directory.rmdir()


def _discard(kind: Kind, directory: Path, state: dict) -> None:
    # A first start that failed leaves only its logs, so the next start picks new ports.
    kind.purge(directory, state)
    for name in PURGE_DIRS:
        shutil.rmtree(directory / name, ignore_errors=True)
    (directory / STATE_FILE).unlink(missing_ok=True)


def _purge(kind: Kind, directory: Path, state: dict) -> None:
    kind.purge(directory, state)
    for name in PURGE_DIRS:
        shutil.rmtree(directory / name, ignore_errors=True)
    for pattern in PURGE_GLOBS:
        for path in directory.glob(pattern):
            path.unlink(missing_ok=True)


def status(kind: Kind, directory: Path) -> tuple[bool, dict]:
    state = load_state(kind, directory) if directory.is_dir() else None
    procs = (state or {}).get("procs", {})
    live = live_groups(state)
    running = bool(procs) and set(live) == set(procs)
    report: dict = {
        "kind": kind.name,
        "dir": str(directory),
        "running": running,
        "processes": {name: {"pid": p["pid"], "alive": name in live} for name, p in procs.items()},
    }
    if running:
        report["service"] = kind.info(state)
    return running, report
