"""Running `objfs up` / `objfs mount` as real processes in tests, and proving they left nothing.

The registry (objfs.runtime, in the test's own OBJFS_RUN_DIR) gives each
stack's PIDs; `Leftovers` stops by PID and unmounts whatever a test left
behind, however it ended.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from objfs import runtime
from objfs.commands.mountpoints import mounted_type
from objfs.storage.urls import ENVIRONMENT
from tests import daemons
from tests.storage.backends import azure_url, fresh_container, swift_url

OBJFS = daemons.command("objfs")
READY_SECONDS = 120.0
STOP_SECONDS = 120.0
TEST_PORTS = ["--http-port", "0", "--imgr-http-port", "0"]  # never the well-known ones


def gone(pid: int, timeout: float = STOP_SECONDS) -> bool:
    """Whether process `pid` has ended (waiting for it up to `timeout`)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def objfs(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300):
    return subprocess.run(
        [OBJFS, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed command (asserted so)."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@dataclass
class Up:
    """A running `objfs up`: its process, the mount point, and its registry entry."""

    proc: subprocess.Popen
    mountpoint: Path
    entry: runtime.Entry
    stderr: Path
    said: list[str]  # its lines up to "Ctrl-C ..."

    @property
    def pids(self) -> list[int]:
        return [self.entry.pid, *self.entry.pids.values()]

    def interrupt(self, sig: int = signal.SIGINT) -> str:
        """Ctrl-C (or `sig`): returns what it printed after; asserts it exited 0."""
        self.proc.send_signal(sig)
        return self.finished()

    def finished(self) -> str:
        """What it printed until it exited; asserts it exited 0."""
        out, _ = self.proc.communicate(timeout=STOP_SECONDS)
        assert self.proc.returncode == 0, self.stderr.read_text()
        return out


@dataclass
class Leftovers:
    """What the test started: stopped by PID and unmounted at the end, whatever happened."""

    scratch: Path  # for the stderr of what it starts
    mounts: list[Path] = field(default_factory=list)
    procs: list[subprocess.Popen] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)  # of stacks seen, stopped if still there

    def up(self, cwd: Path, *args: str) -> Up:
        stderr = self.scratch / f"up-{len(self.procs)}.err"
        with open(stderr, "w") as err:
            proc = subprocess.Popen(
                [OBJFS, "up", *args, *TEST_PORTS], cwd=cwd, stdout=subprocess.PIPE,
                stderr=err, text=True, preexec_fn=daemons.interruptible,
            )  # fmt: skip
        self.procs.append(proc)
        lines = _lines_until(proc, "Ctrl-C")
        mountpoint = Path(next(line for line in lines if " mounted at " in line).split(" at ")[1])
        self.mounts.append(mountpoint)
        entry = runtime.find(str(mountpoint))
        assert entry is not None and entry.pid == proc.pid, entry
        self.pids += entry.pids.values()
        return Up(proc, mountpoint, entry, stderr, lines)

    def mounted(self, mountpoint: Path) -> runtime.Entry:
        """The live stack at `mountpoint` (asserted), remembered for the cleanup."""
        self.mounts.append(mountpoint)
        entry = runtime.find(str(mountpoint))
        assert entry is not None, f"no live stack at {mountpoint}"
        self.pids += [entry.pid, *entry.pids.values()]
        assert mounted_type(mountpoint) == "fuse.objfs"
        return entry

    def clean(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for entry in _all_entries():
            self.pids += [entry.pid, *entry.pids.values()]
        for pid in self.pids:
            _stop_pid(pid)
        for mountpoint in self.mounts:
            subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], capture_output=True)


def _lines_until(proc: subprocess.Popen, marker: str) -> list[str]:
    """What `proc` printed up to the line holding `marker` (read unbuffered, with a deadline)."""
    data = b""
    deadline = time.monotonic() + READY_SECONDS
    while marker.encode() not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([proc.stdout], [], [], remaining)[0]:
            raise AssertionError(f"objfs up said {data!r} and no {marker!r} in time")
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            raise AssertionError(f"objfs up exited ({proc.wait()}) after saying {data!r}")
        data += chunk
    return data.decode().strip().splitlines()


def _all_entries() -> list[runtime.Entry]:
    entries = []
    for path in runtime.run_dir().glob("*.json"):
        entry = runtime.load(path)
        if entry is not None:
            entries.append(entry)
    return entries


def _stop_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not gone(pid):
        os.kill(pid, signal.SIGKILL)
        gone(pid)


def tree(root: Path) -> dict[str, bytes | str]:
    """Every file's bytes and every symlink's target under `root`, by relative path."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if path.is_symlink():
            found[name] = os.readlink(path)
        elif path.is_file():
            found[name] = path.read_bytes()
        else:
            found[name] = "<dir>"
    return found


def write_sample(root: Path) -> dict[str, bytes | str]:
    """A few files of several sizes, a directory and a symlink; what `tree` should find."""
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "hello.txt").write_text("hello objfs\n")
    (root / "docs" / "deep" / "random.bin").write_bytes(os.urandom(3 << 20))
    (root / "docs" / "empty").write_bytes(b"")
    (root / "link").symlink_to("hello.txt")
    return tree(root)


def assert_no_secrets(text: str) -> None:
    assert "key=" not in text and "AccountKey" not in text, text


def assert_nothing_left(state: Path, mountpoint: Path) -> None:
    """No process runs on `state`, nothing is mounted on `mountpoint`, the registry is empty."""
    found = subprocess.run(["pgrep", "-af", str(state)], capture_output=True, text=True)
    assert found.stdout == "", found.stdout
    assert mounted_type(mountpoint) is None
    assert runtime.running() == []


# Bad input every verb that starts a stack must refuse in one line:
# name -> (URL for the backend fixtures, words the error must contain).
BAD_INPUTS = ["scheme", "unreachable", "swift-key", "azure-key", "no-credentials", "no-mountpoint"]


def bad_url(case: str, request, tmp: Path) -> tuple[str, str]:
    """(URL, a word its error names) for a BAD_INPUTS case; file:// for no-mountpoint."""
    if case == "scheme":
        return "ftp://host/container", "scheme"
    if case == "unreachable":  # nothing listens on port 9 (discard) here
        nowhere = {"auth_url": "http://127.0.0.1:9/auth/v1.0", "user": "a:b", "key": "k"}
        return swift_url({}, "c", **nowhere), "unreachable"
    if case == "swift-key":
        info = request.getfixturevalue("swift_service")
        wrong = {"auth_url": info["auth_url"], "user": info["user"], "key": "not-the-key"}
        return swift_url(info, fresh_container(), **wrong), "refused"
    if case == "azure-key":
        info = request.getfixturevalue("azurite_service")
        fields = dict(p.split("=", 1) for p in info["connection_string"].split(";") if p)
        fields["AccountKey"] = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk="
        wrong = ";".join(f"{k}={v}" for k, v in fields.items())
        return azure_url(info, fresh_container(), connection_string=wrong), "refused"
    if case == "no-credentials":
        return "swift://c", "credentials"
    return f"file://{tmp / 'store'}", "mount point"


def no_credentials_env(tmp: Path) -> dict[str, str]:
    """This environment without any Swift or Azure credentials (nor a credentials file)."""
    hidden = {v for table in ENVIRONMENT.values() for v in table.values()}
    env = {k: v for k, v in os.environ.items() if k not in hidden}
    env["OBJFS_CREDENTIALS"] = str(tmp / "no-credentials.toml")
    return env
