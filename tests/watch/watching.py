"""Running `objfs watch` against a volume served by `objfs up`, and waiting until it is in step.

`Served` is a running stack on a file:// store with the mount a test reads
the volume through; `Watcher` is a running `objfs watch` (its /stats read
over HTTP). Both are registered with `Leftovers`, which stops them by PID and
unmounts whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from objfs.watch.target import TEMP_PREFIX
from tests import daemons
from tests.commands.stacks import Leftovers, Up, objfs

DEADLINE = 90.0  # seconds for the watcher to start, to get in step, to stop
POLL = 0.05


@dataclass
class Served:
    """`objfs up` of file://STORE; the watch fills `path` of its volume."""

    up: Up
    store: Path
    state: Path  # the stack's state dir (for `objfs verify URL --state`)
    path: str = "/w"

    @property
    def url(self) -> str:
        return f"file://{self.store}"

    @property
    def target(self) -> str:
        return f"{self.url}:{self.path}"

    @property
    def mirror(self) -> Path:
        """The watched directory's image, seen through the mount."""
        return self.up.mountpoint / self.path.strip("/")

    def stop(self) -> None:
        self.up.interrupt()

    def verify_stored(self, local: Path) -> subprocess.CompletedProcess:
        """`objfs verify LOCAL URL:PATH` from the container (once the stack is stopped)."""
        return objfs("verify", str(local), self.target, "--state", str(self.state))


def serve(leftovers: Leftovers, tmp: Path) -> Served:
    (tmp / "mnt").mkdir()
    up = leftovers.up(tmp, str(tmp / "mnt"), "--url", f"file://{tmp / 'store'}",
                      "--state", str(tmp / "stack"))  # fmt: skip
    return Served(up, tmp / "store", tmp / "stack")


@dataclass
class Watcher:
    proc: subprocess.Popen
    stats_url: str
    stderr: Path

    def stats(self) -> dict:
        try:
            with urllib.request.urlopen(self.stats_url, timeout=30) as answer:
                return json.load(answer)
        except OSError as exc:  # it is ending, most likely: say why it did
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
            raise AssertionError(f"objfs watch: {exc} (exit {self.proc.poll()}):\n"
                                 f"{self.stderr.read_text()[-5000:]}") from None  # fmt: skip

    def wait(self, what: str, condition: Callable[[], bool], timeout: float = DEADLINE) -> None:
        """Until `condition()` holds, while the watcher runs; fail after `timeout`."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                raise AssertionError(f"objfs watch exited ({self.proc.returncode}) before "
                                     f"{what}:\n{self.stderr.read_text()[-3000:]}")  # fmt: skip
            assert time.monotonic() < deadline, f"no {what} in {timeout} s: {self.stats()}"
            time.sleep(POLL)

    def quiet(self) -> bool:
        """Nothing due, busy, renaming, failing, nor synced but not yet durable."""
        s = self.stats()
        return not (s["due"] or s["busy"] or s["renames"] or s["unrecorded"] or s["failures"])

    def in_step(self, local: Path, mirror: Path) -> None:
        """Until it is quiet and `objfs verify LOCAL MIRROR` (the mount) finds them equal."""
        last: list[subprocess.CompletedProcess] = []

        def equal() -> bool:
            if not self.quiet():
                return False
            last[:] = [objfs("verify", str(local), str(mirror))]
            return last[0].returncode == 0 and self.quiet()

        try:
            self.wait("the volume in step", equal)
        except AssertionError as exc:
            said = last[0].stdout[-3000:] if last else "(never quiet)"
            raise AssertionError(f"{exc}\nlast verify: {said}") from None

    def stop(self) -> str:
        """SIGINT: what it printed on stderr; asserts it exited 0."""
        self.proc.send_signal(signal.SIGINT)
        assert self.proc.wait(DEADLINE) == 0, self.stderr.read_text()[-3000:]
        return self.stderr.read_text()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(DEADLINE)


def watch(
    leftovers: Leftovers, local: Path, target: str, state: Path, *extra: str, **popen: object
) -> Watcher:
    """`objfs watch LOCAL TARGET --state STATE --http-port 0 EXTRA`, once it serves its status."""
    argv = [daemons.command("objfs"), "watch", str(local), target, "--state", str(state)]
    return start_watch(leftovers, [*argv, "--http-port", "0", *extra], **popen)


def start_watch(leftovers: Leftovers, argv: list[str], **popen: object) -> Watcher:
    stderr = leftovers.scratch / f"watch-{len(leftovers.procs)}.err"
    with open(stderr, "w") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True,
                                preexec_fn=daemons.interruptible, **popen)  # fmt: skip
    leftovers.procs.insert(0, proc)  # stopped before the stack it uses
    line = _first_line(proc, stderr)
    assert "status at http://" in line, line
    return Watcher(proc, line.rsplit("status at ", 1)[1].rstrip("/") + "/stats", stderr)


def _first_line(proc: subprocess.Popen, stderr: Path) -> str:
    data = b""
    deadline = time.monotonic() + DEADLINE
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([proc.stdout], [], [], remaining)[0]:
            raise AssertionError(f"objfs watch said {data!r}: {stderr.read_text()[-3000:]}")
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            raise AssertionError(f"objfs watch exited ({proc.wait()}) after {data!r}:\n"
                                 f"{stderr.read_text()[-3000:]}")  # fmt: skip
        data += chunk
    return data.decode().strip()


def temps_in(directory: Path) -> list[str]:
    """The watcher's temporary names anywhere under `directory`."""
    return [str(p) for p in directory.rglob(f"{os.fsdecode(TEMP_PREFIX)}*")]
