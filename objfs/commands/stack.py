"""One volume's whole stack on this machine: ickpt, imgr and iclient as child processes.

`serve(spec, announce)` starts ickpt (its log in the state dir), formats the
volume on first use, starts imgr and then iclient, each ready once it prints
its first line (within READY_SECONDS), registers the mount (objfs.runtime),
calls `announce` and serves until SIGINT, SIGTERM or SIGHUP, an unmount from
outside (iclient exits 0 by itself), or a child's death. Then it stops them
in order: iclient first (it returns once every write is uploaded and in a
checkpoint), then imgr (a last checkpoint), then ickpt.

The state dir holds `ckpt.log` (the checkpoint log: the volume's checkpoint
lives there, so mount again with the same state dir), `logs/*.log` (one per
daemon), `cache/` (iclient's spill space) and `run/` (the configs that carry
the per-run secret and the store's credentials, mode 0600, removed at stop).
Children run in their own process group, so that a terminal's Ctrl-C reaches
only the supervisor, which stops them in order.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import trio

from ickpt.remote import RemoteStore
from ickpt.store import StoreError
from iclient.api import DEFAULT_HTTP_PORT as ICLIENT_HTTP_PORT
from imgr.api import DEFAULT_HTTP_PORT as IMGR_HTTP_PORT
from imgr.format import AlreadyFormatted, format_volume
from imgr.ownership import checkpoint_key
from objfs import runtime
from objfs.cli import CommandError
from objfs.commands import mountpoints
from objfs.commands.common import volume_name
from objfs.commands.tokens import mount_token
from objfs.rpc import RpcError
from objfs.storage import (
    AuthError,
    ConfigError,
    ObjectStore,
    RetryPolicy,
    StorageError,
    open_store,
)
from objfs.storage.urls import open_raw, parse, redact

log = logging.getLogger(__name__)

READY_SECONDS = 60.0  # a daemon must print its ready line within this
DRAIN_SECONDS = 900.0  # iclient's unmount: every buffered write uploaded
STOP_SECONDS = 60.0  # imgr (a last checkpoint) and ickpt, and iclient once imgr is gone
STORE_POLICY = RetryPolicy(attempts=3)  # first contact: a wrong URL must fail in seconds
READY = {"ickpt": "ickpt listening on ", "imgr": "imgr listening on ",
         "iclient": "iclient mounted "}  # fmt: skip
_STATUS_URL = re.compile(r"status on (http://\S+/)")
T = TypeVar("T")


class StackError(CommandError):
    """The stack could not start, or stopped on an error; one line."""


@dataclass(frozen=True)
class Spec:
    url: str
    mountpoint: Path  # absolute, checked by mountpoints.prepare
    state: Path  # absolute
    options: tuple[str, ...] = ()
    http_port: int = ICLIENT_HTTP_PORT  # iclient's status pages
    imgr_http_port: int = IMGR_HTTP_PORT

    @property
    def volume(self) -> str:
        return volume_name(self.url)


@dataclass
class Child:
    name: str
    proc: trio.Process
    log: Path
    log_start: int  # where this run's part of the log begins
    line: str = ""
    stopping: bool = False

    def last_words(self) -> str:
        """The last line this run of the child logged (its error, usually)."""
        with open(self.log, "rb") as f:
            f.seek(self.log_start)
            lines = f.read().decode(errors="replace").splitlines()
        for line in reversed(lines):
            text = line.strip().lstrip("|").strip()  # "| Error: ..." in an exception group
            if text.strip("+-"):
                return text
        return f"(nothing in {self.log})"


def _program(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _private(path: Path, text: str) -> None:
    """Write `text` to a new file only its owner can read."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def check_url(url: str) -> str:
    """`url` if it can name a volume (CommandError saying why not); a file:// path made absolute.

    Nothing is contacted: credentials are only checked to be there.
    """
    try:
        scheme, where, _ = parse(url)
        open_raw(url)  # refuses missing or malformed credentials
    except ConfigError as exc:
        raise CommandError(f"{redact(url)}: {exc}") from None
    if scheme == "mem":
        raise CommandError(
            "a mem:// store lives inside one process: use file://, swift:// or azure://"
        )
    volume_name(url)
    if scheme != "file":
        return url
    query = urlsplit(url).query
    return f"file://{Path(where).resolve()}" + (f"?{query}" if query else "")


def split_options(values: list[str]) -> tuple[str, ...]:
    """-o values as single options: `-o a,b -o c` is (a, b, c)."""
    return tuple(opt for value in values for opt in value.split(",") if opt)


def log_to_file(state: Path) -> None:
    """Send this process's log to STATE/logs/objfs.log: the terminal gets only what we print."""
    try:
        (state / "logs").mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(state / "logs" / "objfs.log")
    except OSError as exc:
        raise CommandError(f"cannot write to the state dir {state}: {exc.strerror}") from None
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


@dataclass
class Stack:
    spec: Spec
    children: list[Child] = field(default_factory=list)
    ended: Child | None = None  # the child that exited while nobody was stopping it
    failure: str = ""

    @property
    def run_dir(self) -> Path:
        return self.spec.state / "run"

    async def start(self, nursery: trio.Nursery) -> runtime.Entry:
        """Start all three (formatting on first use); the entry the registry gets."""
        spec = self.spec
        for sub in ("logs", "cache"):
            (spec.state / sub).mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(mode=0o700, exist_ok=True)
        secret = secrets.token_urlsafe(32)
        token = await _store_call(trio.to_thread.run_sync, mount_token, spec.url, secret)
        ckpt_log = f"file://{spec.state / 'ckpt.log'}"
        ickpt = await self._spawn(nursery, "ickpt", ["--port", "0", "--store", ckpt_log])
        ickpt_at = ickpt.line.rsplit(" ", 1)[1]
        await prepare_volume(spec.url, ickpt_at, spec.volume)
        imgr = await self._spawn(nursery, "imgr", self._imgr_argv(ickpt_at, secret))
        imgr_at = imgr.line.split()[3].rstrip(",")
        iclient = await self._spawn(nursery, "iclient", self._iclient_argv(imgr_at, token))
        return runtime.Entry(
            mountpoint=str(spec.mountpoint),
            volume=spec.volume,
            url=redact(spec.url),
            pid=os.getpid(),
            pid_started=runtime.started_ticks(os.getpid()),
            iclient_status=_status_url(iclient.line),
            imgr_status=_status_url(imgr.line),
            state=str(spec.state),
            started=time.time(),
            pids={child.name: child.proc.pid for child in self.children},
            pids_started={c.name: runtime.started_ticks(c.proc.pid) for c in self.children},
            imgr=imgr_at,
        )

    def _imgr_argv(self, ickpt_at: str, secret: str) -> list[str]:
        config = self.run_dir / "imgr.toml"
        name, url = self.spec.volume, self.spec.url
        _private(config, f"[volumes.{_toml(name)}]\nurl = {_toml(url)}\nsecret = {_toml(secret)}\n")
        # A stable id: restarted after a crash, it takes the volume back at once.
        me = f"objfs-stack@{socket.gethostname()}"
        return ["run", "--config", str(config), "--port", "0", "--ickpt", ickpt_at,
                "--http-port", str(self.spec.imgr_http_port), "--id", me]  # fmt: skip

    def _iclient_argv(self, imgr_at: str, token: str) -> list[str]:
        spec = self.spec
        config = self.run_dir / "iclient.toml"
        _private(config, f"store = {_toml(spec.url)}\ntoken = {_toml(token)}\n")
        argv = ["run", str(spec.mountpoint), "--config", str(config), "--imgr", imgr_at,
                "--volume", spec.volume, "--cache-dir", str(spec.state / "cache"),
                "--http-port", str(spec.http_port)]  # fmt: skip
        for option in spec.options:
            argv += ["-o", option]
        return argv

    async def _spawn(self, nursery: trio.Nursery, name: str, args: list[str]) -> Child:
        """Start `name`, watched from now on; returned once it printed its ready line."""
        log_path = self.spec.state / "logs" / f"{name}.log"
        with open(log_path, "ab") as log_file:
            proc = await trio.lowlevel.open_process(
                [_program(name), *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=log_file, process_group=0,
            )  # fmt: skip
            child = Child(name, proc, log_path, log_file.tell())
        self.children.append(child)
        nursery.start_soon(self._watch, child, nursery.cancel_scope)
        with trio.move_on_after(READY_SECONDS):
            child.line = await _first_line(proc.stdout)
        if not child.line.startswith(READY[name]):
            raise StackError(f"{name} did not start: {child.last_words()}")
        log.info("%s (pid %d): %s", name, proc.pid, child.line)
        nursery.start_soon(_discard, proc.stdout)
        return child

    async def _watch(self, child: Child, scope: trio.CancelScope) -> None:
        await child.proc.wait()
        if child.stopping:
            return
        self.ended = child
        if (child.name != "iclient" or child.proc.returncode != 0) and not self.failure:
            self.failure = (
                f"{child.name} (pid {child.proc.pid}) exited with {child.proc.returncode}: "
                f"{child.last_words()}"
            )
        if self.failure:
            log.error("%s; stopping the rest", self.failure)
        else:
            log.info("%s was unmounted from outside; stopping the rest", self.spec.mountpoint)
        scope.cancel()

    async def stop(self) -> None:
        """Stop every child, last started first; a dead mount left behind is detached."""
        for child in reversed(self.children):
            lost_imgr = self.ended is not None and self.ended.name != "iclient"
            grace = DRAIN_SECONDS if child.name == "iclient" and not lost_imgr else STOP_SECONDS
            await _stop(child, grace)
            if child.proc.returncode != 0 and not self.failure and self.ended is not child:
                self.failure = (
                    f"{child.name} stopped with {child.proc.returncode}: {child.last_words()}"
                )
        for config in self.run_dir.glob("*.toml"):
            config.unlink()
        if mountpoints.mounted_type(self.spec.mountpoint) == mountpoints.OBJFS_TYPE:
            mountpoints.unmount_lazily(self.spec.mountpoint)


async def _stop(child: Child, grace: float) -> None:
    child.stopping = True
    if child.proc.returncode is None:
        log.info("stopping %s (pid %d)", child.name, child.proc.pid)
        child.proc.send_signal(signal.SIGTERM)
        with trio.move_on_after(grace):
            await child.proc.wait()
        if child.proc.returncode is None:
            log.error("%s did not stop within %.0f s; killing it", child.name, grace)
            child.proc.kill()
    await child.proc.wait()


async def _first_line(stream: trio.abc.ReceiveStream) -> str:
    """The first line `stream` gives ("" if it ends before one)."""
    data = b""
    while b"\n" not in data:
        chunk = await stream.receive_some()
        if not chunk:
            return ""
        data += chunk
    return data.split(b"\n", 1)[0].decode(errors="replace").strip()


async def _discard(stream: trio.abc.ReceiveStream) -> None:
    # Whatever a daemon prints later must not fill a pipe nobody reads.
    while await stream.receive_some():
        pass


def _status_url(line: str) -> str:
    found = _STATUS_URL.search(line)
    return found[1] if found else ""


async def _store_call(fn: Callable[..., Awaitable[T]], *args: object) -> T:
    """`await fn(*args)` with storage and checkpoint failures said in one line."""
    try:
        return await fn(*args)
    except AuthError as exc:
        raise StackError(f"credentials refused: {exc}") from None
    except (StorageError, StoreError, RpcError, AlreadyFormatted) as exc:
        raise StackError(str(exc)) from None


async def prepare_volume(url: str, ickpt_at: str, volume: str) -> None:
    """Format the volume on first use: no checkpoint yet and an empty container.

    A container that holds objects while the checkpoint log has no checkpoint
    of the volume is refused, never formatted over: it is someone's data, or
    this volume's with its checkpoint kept in another state dir.
    """
    host, _, port = ickpt_at.rpartition(":")
    store = open_store(url, STORE_POLICY)
    async with RemoteStore(host, int(port)) as ckpt, store:
        if await _store_call(ckpt.get, checkpoint_key(volume)) is not None:
            return
        await _store_call(store.ensure_container)
        if await _store_call(_any_object, store):
            raise StackError(
                f"{redact(url)} holds objects but this state dir has no checkpoint of volume "
                f"{volume}: not formatting over them (mount with the state dir it was made with)"
            )
        await _store_call(format_volume, store, ckpt, volume)


async def _any_object(store: ObjectStore) -> bool:
    async for _ in store.list():
        return True
    return False


async def serve(spec: Spec, announce: Callable[[runtime.Entry], None]) -> bool:
    """Run the stack until a signal, an unmount from outside or a child's death.

    `announce` gets the registry entry once the mount is live. Whether it
    was (False: a signal came first). StackError (one line) if the stack
    could not start or stopped on an error.
    """
    stack = Stack(spec)
    entry = None
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_cancel_on_signal, signals, nursery.cancel_scope)
                try:
                    entry = await stack.start(nursery)
                    runtime.write(entry)
                except (StackError, OSError) as exc:
                    stack.failure = stack.failure or str(exc)
                else:
                    announce(entry)
                    await trio.sleep_forever()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await stack.stop()
            if entry is not None:
                _unregister(entry, stack.failure)
    if stack.failure:
        raise StackError(stack.failure)
    return entry is not None


def _unregister(entry: runtime.Entry, failure: str) -> None:
    if failure:
        # Kept, with the reason, for `objfs umount` to report; readers drop it as dead.
        runtime.write(runtime.Entry(**{**entry.__dict__, "failure": failure}))
    else:
        runtime.remove(entry.mountpoint)


async def _cancel_on_signal(signals: trio.abc.ReceiveChannel[int], scope: trio.CancelScope) -> None:
    async for signum in signals:
        log.info("%s received: stopping", signal.Signals(signum).name)
        scope.cancel()
        return
