"""Helpers shared by the service kinds: ports, processes, state files and HTTP probes.

Stdlib only: this runs under any python3 >= 3.11, inside or outside the project venv.
"""

from __future__ import annotations

import http.client
import json
import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

LOCALHOST = "127.0.0.1"
STATE_FILE = "state.json"
SERVICE_FILE = "service.json"
LOCK_FILE = ".lock"
POLL_INTERVAL = 0.05


class ServiceError(Exception):
    """A failure reported to the user as one line on stderr."""


@dataclass
class Options:
    timeout: float | None = None
    purge: bool = False
    azurite_bin: str | None = None


@dataclass
class ProcSpec:
    """One process of a service: its name (for pid/log files), argv and environment."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))


class Kind:
    """Interface each service kind implements; the lifecycle module drives it."""

    name = ""
    port_names: tuple[str, ...] = ()
    start_timeout = 60.0

    def new_state(self, directory: Path, opts: Options) -> dict:
        """Kind-specific state recorded on the first start (beyond ports)."""
        return {}

    def prepare(self, directory: Path, state: dict, opts: Options) -> list[ProcSpec]:
        """Write config/data for state (fresh or restarted) and return the processes to run."""
        raise NotImplementedError

    def wait_ready(self, state: dict, waiter: Waiter) -> None:
        raise NotImplementedError

    def info(self, state: dict) -> dict:
        raise NotImplementedError

    def purge(self, directory: Path, state: dict) -> None:
        """Remove what the kind keeps outside the common files (e.g. tmpfs dirs)."""


# ---------------------------------------------------------------- ports


def pick_ports(names: tuple[str, ...]) -> dict[str, int]:
    # Hold every socket open until all are bound so the kernel hands out distinct ports.
    socks: list[socket.socket] = []
    try:
        for _ in names:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOCALHOST, 0))
            socks.append(sock)
        return {name: sock.getsockname()[1] for name, sock in zip(names, socks, strict=True)}
    finally:
        for sock in socks:
            sock.close()


def check_ports_free(ports: dict[str, int]) -> None:
    # SO_REUSEADDR like the servers themselves, so TIME_WAIT leftovers do not count as busy.
    for name, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((LOCALHOST, port))
            except OSError as exc:
                raise ServiceError(f"port {port} ({name}) is not free: {exc.strerror}") from exc


# ---------------------------------------------------------------- processes


def _read_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (index 0 is the state letter)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    return data[data.rindex(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """Kernel start time of a live process; None if gone or a zombie."""
    fields = _read_stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def pid_alive(pid: int) -> bool:
    # Zombies count as dead: PID 1 in some sandboxes never reaps them.
    return start_time(pid) is not None


def live_pgids() -> set[int]:
    """Process groups that still have a live (non-zombie) member."""
    pgids = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _read_stat(int(entry.name))
            if fields and fields[0] not in ("Z", "X"):
                pgids.add(int(fields[2]))
    return pgids


def owned_group(proc: dict, pgids: set[int]) -> int | None:
    """The process group of a recorded process if it still has live members we own.

    Each process leads its own group (start_new_session), so pgid == pid. A pid whose
    live owner has a different start time was reused by someone else: not ours.
    """
    pid, started = proc["pid"], proc.get("start_time")
    fields = _read_stat(pid)
    if fields is not None and fields[0] not in ("Z", "X") and int(fields[19]) != started:
        return None
    return pid if pid in pgids else None


def spawn(directory: Path, spec: ProcSpec) -> subprocess.Popen:
    log_path = directory / f"{spec.name}.log"
    with open(log_path, "ab") as log_file:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log_file.write(f"--- {stamp} start: {shlex.join(spec.argv)}\n".encode())
        log_file.flush()
        try:
            return subprocess.Popen(
                spec.argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=spec.env,
                cwd=directory,
                start_new_session=True,
            )
        except OSError as exc:
            raise ServiceError(f"cannot run {spec.argv[0]}: {exc.strerror}") from exc


def signal_groups(pgids: list[int], sig: int) -> None:
    for pgid in pgids:
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass


def wait_groups_gone(pgids: list[int], timeout: float) -> list[int]:
    """Wait until no group has live members; return the groups still alive at the deadline."""
    deadline = time.monotonic() + timeout
    remaining = [g for g in pgids if g in live_pgids()]
    while remaining and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
        alive = live_pgids()
        remaining = [g for g in remaining if g in alive]
    return remaining


def terminate_groups(pgids: list[int], grace: float) -> None:
    signal_groups(pgids, signal.SIGTERM)
    stubborn = wait_groups_gone(pgids, grace)
    if not stubborn:
        return
    signal_groups(stubborn, signal.SIGKILL)
    if wait_groups_gone(stubborn, 5.0):
        raise ServiceError(f"process groups {stubborn} survived SIGKILL")


def log_tail(directory: Path, names: list[str], lines: int = 20) -> str:
    parts = []
    for name in names:
        path = directory / f"{name}.log"
        try:
            text = path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
        parts.append(f"==> {path} <==\n" + "\n".join(text))
    return "\n".join(parts)


# ---------------------------------------------------------------- state files


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ServiceError(f"unreadable {path}: {exc}") from exc


def write_json(path: Path, data: dict) -> str:
    text = json.dumps(data, indent=2) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return text


# ---------------------------------------------------------------- readiness


def http_request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 2.0,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    # http.client rather than urllib: no proxy environment variables can reroute 127.0.0.1.
    conn = http.client.HTTPConnection(LOCALHOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def answers_http(port: int) -> bool:
    """True once anything speaking HTTP answers on port, whatever the status."""
    http_request(port, "GET", "/")
    return True


class Waiter:
    """Polls readiness checks until a shared deadline, failing fast if a process dies."""

    def __init__(self, procs: dict[str, subprocess.Popen], timeout: float) -> None:
        self.procs = procs
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout

    def _check_procs(self) -> None:
        for name, proc in self.procs.items():
            code = proc.poll()
            if code is not None:
                raise ServiceError(f"{name} exited with code {code} before becoming ready")

    def until(self, what: str, check: Callable[[], object]) -> object:
        """Call check until it returns a truthy value; errors while polling count as not yet."""
        last_error = "no answer"
        while True:
            self._check_procs()
            try:
                result = check()
            except (OSError, http.client.HTTPException, ValueError) as exc:
                result, last_error = None, f"{type(exc).__name__}: {exc}"
            if result:
                return result
            if time.monotonic() >= self.deadline:
                raise ServiceError(f"not ready after {self.timeout:g} s: {what} ({last_error})")
            time.sleep(POLL_INTERVAL)
