"""The registry of running objfs stacks, so that `objfs umount` and `objfs status` find them.

One JSON file per mount in the run directory: `$OBJFS_RUN_DIR`, else
`/run/objfs` as root, else `$XDG_RUNTIME_DIR/objfs`, else `/tmp/objfs-UID`.
A supervisor writes its entry once the mount is live and removes it when it
stops. An entry whose supervisor is gone (a crash, a kill -9) is ignored, and
removed by whoever reads it once its daemons are gone too (until then
`objfs umount` stops them). Start times are kept with the PIDs so that a
recycled PID is never taken for one of ours.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    mountpoint: str
    volume: str
    url: str  # redacted: no credentials
    pid: int  # the supervisor's
    iclient_status: str  # http://HOST:PORT/
    imgr_status: str
    state: str  # the state dir: logs, cache, checkpoint log
    started: float  # time.time()
    pids: dict[str, int] = field(default_factory=dict)  # ickpt, imgr, iclient
    pid_started: int = 0  # the supervisor's start time in clock ticks since boot
    pids_started: dict[str, int] = field(default_factory=dict)  # the daemons' start times
    failure: str = ""  # set when the stack stopped on an error, for `objfs umount` to say
    imgr: str = ""  # imgr's RPC address, HOST:PORT (`objfs load --into` talks to it)


def run_dir() -> Path:
    configured = os.environ.get("OBJFS_RUN_DIR")
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/run/objfs")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) / "objfs" if runtime else Path(f"/tmp/objfs-{os.getuid()}")


def _path(mountpoint: str) -> Path:
    return run_dir() / f"{hashlib.sha256(mountpoint.encode()).hexdigest()[:24]}.json"


def started_ticks(pid: int) -> int:
    """When process `pid` started (clock ticks since boot), or 0 if it is gone (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    # The command name (field 2) may hold spaces and parentheses: count from its end.
    fields = stat.rsplit(")", 1)[1].split()
    return 0 if fields[0] == "Z" else int(fields[19])


def alive(entry: Entry) -> bool:
    return started_ticks(entry.pid) == entry.pid_started != 0


STOP_ORDER = ("iclient", "imgr", "ickpt")


def stranded(entry: Entry) -> list[tuple[str, int]]:
    """The daemons of `entry` still running, in stop order: after its supervisor died,
    `objfs umount` stops them itself."""
    return [
        (name, entry.pids[name])
        for name in STOP_ORDER
        if name in entry.pids
        and started_ticks(entry.pids[name]) == entry.pids_started.get(name, -1)
    ]


def gone(entry: Entry) -> bool:
    """Neither the supervisor nor any of its daemons runs: the entry can go."""
    return not alive(entry) and not stranded(entry)


def write(entry: Entry) -> None:
    """Add or replace the entry of `entry.mountpoint` (atomically: readers never see half)."""
    directory = run_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = _path(entry.mountpoint)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(asdict(entry), indent=2))
    temporary.replace(path)


def remove(mountpoint: str) -> None:
    _path(mountpoint).unlink(missing_ok=True)


def load(path: Path) -> Entry | None:
    """The entry in file `path`, alive or not; None if it is missing or unreadable."""
    try:
        return Entry(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        log.warning("ignoring unreadable registry entry %s: %s", path, exc)
        return None


def read(mountpoint: str) -> Entry | None:
    """The entry of `mountpoint`, alive or not."""
    return load(_path(mountpoint))


def find(mountpoint: str) -> Entry | None:
    """The live stack mounted at `mountpoint`; the entry of one that is gone is removed."""
    entry = read(mountpoint)
    if entry is None or alive(entry):
        return entry
    if gone(entry):
        remove(mountpoint)
    return None


def running() -> list[Entry]:
    """Every live stack, by mount point; dead entries are removed."""
    entries = []
    for path in run_dir().glob("*.json"):
        entry = load(path)
        if entry is not None and alive(entry):
            entries.append(entry)
        elif entry is not None and gone(entry):
            path.unlink(missing_ok=True)
    return sorted(entries, key=lambda e: e.mountpoint)
