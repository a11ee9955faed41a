"""`objfs up`: a volume mounted in one command, with its own ickpt and imgr, until Ctrl-C.

    objfs up [MOUNTPOINT] [--url URL] [--state DIR] [-o OPT]... [--http-port P]
             [--imgr-http-port P]

Without --url the volume is the embedded default, a local-directory store in
the state dir (./.objfs/store); run again with the same state dir, the same
files are there. Ctrl-C or SIGTERM unmounts once every write is stored, then
stops all three daemons.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import trio

from objfs.commands import mountpoints
from objfs.commands.common import STATE_DIR, embedded_url
from objfs.commands.stack import (
    ICLIENT_HTTP_PORT,
    IMGR_HTTP_PORT,
    Spec,
    check_url,
    log_to_file,
    serve,
    split_options,
)
from objfs.runtime import Entry


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "up",
        help="mount a volume with its own ickpt and imgr until Ctrl-C",
        description="Mount a volume with its own ickpt and imgr; Ctrl-C or SIGTERM unmounts "
        "once every write is stored, then stops them. Without --url: a local-directory "
        "store in the state dir, the same files every run.",
    )
    p.add_argument("mountpoint", nargs="?", type=Path, default=Path("mnt"),
                   help="where to mount (default ./mnt, made if missing)")  # fmt: skip
    p.add_argument("--url", help="the volume's storage URL (default: the state dir's store/)")
    add_stack_args(p, STATE_DIR, ICLIENT_HTTP_PORT, IMGR_HTTP_PORT)
    p.set_defaults(handler=up)


def add_stack_args(p: argparse.ArgumentParser, state: Path, http: int, imgr_http: int) -> None:
    """The flags `up` and `mount` share."""
    p.add_argument("--state", type=Path, default=state, metavar="DIR",
                   help=f"checkpoint log, daemon logs and cache (default ./{state})")  # fmt: skip
    p.add_argument("-o", dest="options", action="append", default=[], metavar="OPT",
                   help="a FUSE option for the mount (repeatable, or comma-separated)")  # fmt: skip
    for flag, port, whose in (("--http-port", http, "the mount's"),
                              ("--imgr-http-port", imgr_http, "imgr's")):  # fmt: skip
        default = f"default {port}, 0: any free port" if port else "default: any free port"
        p.add_argument(flag, type=int, default=port, metavar="P",
                       help=f"{whose} status page port ({default})")  # fmt: skip


def spec_of(args: argparse.Namespace, url: str, *, create: bool) -> Spec:
    """The stack the arguments ask for, checked: one line (CommandError) if it cannot be."""
    state = args.state.resolve()
    return Spec(
        url=check_url(url),
        mountpoint=mountpoints.prepare(args.mountpoint, create=create),
        state=state,
        options=split_options(args.options),
        http_port=args.http_port,
        imgr_http_port=args.imgr_http_port,
    )


def up(args: argparse.Namespace) -> int:
    spec = spec_of(args, args.url or embedded_url(args.state.resolve()), create=True)
    log_to_file(spec.state)
    if trio.run(serve, spec, _announce):
        print(f"objfs up: unmounted {spec.mountpoint}; everything is stored", flush=True)
    else:
        print("objfs up: stopped before the mount was up", flush=True)
    return 0


def _announce(entry: Entry) -> None:
    print(
        f"objfs up: volume {entry.volume} mounted at {entry.mountpoint}\n"
        f"  mount status: {entry.iclient_status}\n"
        f"  imgr status:  {entry.imgr_status}\n"
        f"  logs:         {entry.state}/logs/\n"
        "Ctrl-C unmounts (once every write is stored) and stops.",
        flush=True,
    )
