"""`objfs mount`, `objfs umount`, and mount(8)'s helper `mount.fuse.objfs`.

    objfs mount URL MOUNTPOINT [--state DIR] [-o OPT]... [--http-port P] [--imgr-http-port P]
    objfs umount MOUNTPOINT
    mount -t fuse.objfs URL MOUNTPOINT [-o state=DIR,http_port=P,imgr_http_port=P,OPT...]

`mount` runs the same stack as `objfs up` (objfs.commands.stack) in the
background: a daemon (double fork, new session, output to the state dir's
logs/objfs.log) that answers through a pipe once the mount is live, or with
the one line that says why not. `umount` asks that daemon to stop (SIGTERM)
and returns once every write is uploaded and the daemons are gone; a plain
umount(8) of the mount point ends the stack too.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import select
import signal
import sys
from dataclasses import asdict
from pathlib import Path
from typing import NoReturn, TextIO

import trio

from objfs import runtime
from objfs.cli import CommandError
from objfs.commands import mountpoints
from objfs.commands.common import STATE_DIR, volume_name
from objfs.commands.stack import (
    DRAIN_SECONDS,
    STOP_SECONDS,
    Spec,
    StackError,
    log_to_file,
    serve,
    split_options,
)
from objfs.commands.up import add_stack_args, spec_of

log = logging.getLogger(__name__)

START_SECONDS = 600.0  # the daemon says within this whether it mounted
STOP_WAIT = DRAIN_SECONDS + 3 * STOP_SECONDS  # what `umount` waits for the stack to end
# Options mount(8) passes that mean nothing to a FUSE mount of ours.
GENERIC_OPTIONS = {"defaults", "rw", "dev", "suid", "exec", "auto", "noauto", "user", "nouser",
                   "users", "async", "_netdev", "nofail"}  # fmt: skip
HELPER_OPTIONS = ("state", "http_port", "imgr_http_port")  # -o KEY=VALUE the helper takes itself


def register(verbs: argparse._SubParsersAction) -> None:
    mount = verbs.add_parser(
        "mount",
        help="mount a volume in the background, with its own ickpt and imgr",
        description="Mount a volume in the background, with its own ickpt and imgr; returns "
        "once the mount is live. `objfs umount` (or umount(8)) ends it.",
    )
    mount.add_argument("url", help="the volume's storage URL")
    mount.add_argument("mountpoint", type=Path, help="an existing directory")
    add_stack_args(mount, STATE_DIR, 0, 0)
    mount.set_defaults(handler=mount_command)
    umount = verbs.add_parser(
        "umount", help="unmount once every write is stored, and stop the mount's daemons"
    )
    umount.add_argument("mountpoint", type=Path, help="where objfs up or objfs mount mounted")
    umount.set_defaults(handler=umount_command)


def mount_command(args: argparse.Namespace) -> int:
    entry = detach(spec_of(args, args.url, create=False))
    print(f"objfs mount: volume {entry.volume} mounted at {entry.mountpoint}")
    print(f"  mount status: {entry.iclient_status}\n  imgr status:  {entry.imgr_status}")
    return 0


def umount_command(args: argparse.Namespace) -> int:
    path = mountpoints.absolute(args.mountpoint)
    entry = runtime.read(str(path))
    if entry is not None and runtime.alive(entry):
        stop(entry)
        print(f"objfs umount: {path} unmounted; everything is stored")
    elif entry is not None and runtime.stranded(entry):
        stop_stranded(entry)
        print(f"objfs umount: {path} unmounted; its supervisor had died, its daemons are stopped")
    else:
        runtime.remove(str(path))
        raise CommandError(_not_ours(path))
    return 0


def _not_ours(path: Path) -> str:
    kind = mountpoints.mounted_type(path)
    if kind == mountpoints.OBJFS_TYPE:
        return f"{path} was not mounted by objfs up or objfs mount: stop its iclient instead"
    if kind is not None:
        return f"{path} is not an objfs mount ({kind})"
    if not os.path.lexists(path):
        return f"{path} does not exist"
    return f"{path} is not mounted"


def stop(entry: runtime.Entry) -> None:
    """SIGTERM the stack's supervisor and wait until it is gone; CommandError if it failed."""
    if not _terminate(entry.pid, STOP_WAIT):
        raise CommandError(f"{entry.mountpoint} still stopping after {STOP_WAIT:.0f} s")
    after = runtime.read(entry.mountpoint)
    if after is not None and after.pid == entry.pid and after.failure:
        runtime.remove(entry.mountpoint)
        raise CommandError(after.failure)


def stop_stranded(entry: runtime.Entry) -> None:
    """Stop, in the supervisor's order, the daemons a dead supervisor left running."""
    for name, pid in runtime.stranded(entry):
        log.info("stopping %s (pid %d) of %s", name, pid, entry.mountpoint)
        if not _terminate(pid, DRAIN_SECONDS if name == "iclient" else STOP_SECONDS):
            log.error("%s (pid %d) did not stop; killing it", name, pid)
            _terminate(pid, STOP_SECONDS, signal.SIGKILL)
    mountpoint = Path(entry.mountpoint)
    if mountpoints.mounted_type(mountpoint) == mountpoints.OBJFS_TYPE:
        mountpoints.unmount_lazily(mountpoint)
    runtime.remove(entry.mountpoint)


def _terminate(pid: int, wait: float, sig: int = signal.SIGTERM) -> bool:
    """Send `sig` to `pid` and wait up to `wait` seconds for it to end; whether it did."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        signal.pidfd_send_signal(pidfd, sig)
        return bool(select.select([pidfd], [], [], wait)[0])
    finally:
        os.close(pidfd)


def detach(spec: Spec) -> runtime.Entry:
    """Run the stack in a background daemon; its registry entry once the mount is live."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _daemon(spec, write_end)
    os.close(write_end)
    os.waitpid(pid, 0)  # the first child exits at once, leaving the daemon
    with os.fdopen(read_end, "rb") as pipe:
        ready, _, _ = select.select([pipe], [], [], START_SECONDS)
        answer = pipe.readline() if ready else b""
    logs = spec.state / "logs" / "objfs.log"
    if not answer:
        raise CommandError(f"the mount did not come up; see {logs}")
    message = json.loads(answer)
    if "error" in message:
        raise CommandError(message["error"])
    return runtime.Entry(**message["entry"])


def _daemon(spec: Spec, pipe_fd: int) -> NoReturn:
    """The forked child: a new session, forked once more so it can never get a terminal."""
    code = 1
    try:
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
        os.chdir("/")
        _quiet_stdio(spec.state / "logs" / "objfs.log")
        log_to_file(spec.state)
        code = _supervise(spec, os.fdopen(pipe_fd, "w"))
    except BaseException:
        log.exception("the objfs mount daemon failed")
    finally:
        os._exit(code)


def _quiet_stdio(log_path: Path) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)


def _supervise(spec: Spec, pipe: TextIO) -> int:
    def tell(message: dict) -> None:
        if pipe.closed:
            return
        try:
            pipe.write(json.dumps(message) + "\n")
            pipe.close()
        except OSError:
            pass  # the caller gave up waiting; the log has it all

    try:
        trio.run(serve, spec, lambda entry: tell({"entry": asdict(entry)}))
    except StackError as exc:
        log.error("stopped: %s", exc)
        tell({"error": str(exc)})
        return 1
    return 0


def helper_main(argv: list[str] | None = None) -> int:
    """mount(8)'s helper: `mount.fuse.objfs URL MOUNTPOINT [-sfnv] [-N NS] [-o OPTIONS]`."""
    p = argparse.ArgumentParser(
        prog="mount.fuse.objfs",
        description="mount(8)'s helper for `mount -t fuse.objfs URL MOUNTPOINT` and fstab lines "
        "`URL MOUNTPOINT fuse.objfs OPTIONS 0 0`.",
    )
    p.add_argument("url", help="the volume's storage URL")
    p.add_argument("mountpoint", type=Path, help="an existing directory")
    p.add_argument("-o", dest="options", action="append", default=[], metavar="OPTIONS",
                   help="state=DIR (default /var/lib/objfs/VOLUME as root), http_port=P, "
                   "imgr_http_port=P, FUSE options; mount(8)'s own (rw, _netdev, ...) "
                   "are ignored")  # fmt: skip
    for flag in ("-s", "-f", "-n", "-v"):  # sloppy, fake, no mtab, verbose: nothing to do
        p.add_argument(flag, action="store_true")
    p.add_argument("-N", help="mount namespace (not supported)")
    p.add_argument("-t", help="the type, fuse.objfs")
    args = p.parse_args(argv)
    try:
        if args.N:
            raise CommandError("mount namespaces (-N) are not supported")
        _helper_options(args)
        if not args.f:
            mount_command(args)
    except CommandError as exc:
        print(f"mount.fuse.objfs: {exc}", file=sys.stderr)
        return 32  # mount(8)'s "mount failure"
    return 0


def _helper_options(args: argparse.Namespace) -> None:
    """Split -o into ours (state, ports), the generic ones mount(8) adds, and the FUSE ones."""
    ours: dict[str, str] = {}
    fuse = []
    for option in split_options(args.options):
        key, _, value = option.partition("=")
        if key in HELPER_OPTIONS:
            ours[key] = value
        elif option not in GENERIC_OPTIONS and not key.startswith(("x-", "comment")):
            fuse.append(option)
    args.options = fuse
    args.state = Path(ours["state"]) if "state" in ours else default_state(args.url)
    for key in ("http_port", "imgr_http_port"):
        try:
            setattr(args, key, int(ours.get(key, "0")))
        except ValueError:
            raise CommandError(f"-o {key} must be a port number") from None


def default_state(url: str) -> Path:
    """Where a volume mounted by mount(8) keeps its state: not the caller's cwd."""
    if os.geteuid() == 0:
        base = Path("/var/lib/objfs")
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local/share")) / "objfs"
    return base / volume_name(url)
