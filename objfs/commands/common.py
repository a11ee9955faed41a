"""What the verbs share: the embedded default's state dir, volume names, the checkpoint store.

The embedded default keeps everything under one state dir (`./.objfs` unless
--state says otherwise): the object store `store/`, ickpt's log `ckpt.log`
and per-daemon logs. A verb that needs a volume's checkpoint reads it from a
running ickpt (--ickpt HOST:PORT) or, without one, straight from that log.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from ickpt.config import open_store
from ickpt.remote import RemoteStore
from ickpt.store import CheckpointStore
from objfs.cli import CommandError

STATE_DIR = Path(".objfs")
_NOT_IN_NAMES = re.compile(r"[^A-Za-z0-9._-]")


def embedded_url(state: Path) -> str:
    """The embedded default's object store: a local directory in the state dir."""
    return f"file://{(state / 'store').resolve()}"


def volume_name(url: str) -> str:
    """A volume's name in ickpt and imgr: its container (or directory) name."""
    where = url.split("?", 1)[0].split("://", 1)[-1].rstrip("/")
    name = _NOT_IN_NAMES.sub("-", where.rsplit("/", 1)[-1]).lstrip("._-")[:63]
    if not name:
        raise CommandError(f"{url.split('?', 1)[0]} names no container")
    return name


def add_checkpoint_args(parser: argparse.ArgumentParser) -> None:
    state_help = "the embedded default's state dir (./.objfs)"
    parser.add_argument("--state", type=Path, default=STATE_DIR, help=state_help)
    ickpt_help = "a running ickpt (default: the state dir's checkpoint log)"
    parser.add_argument("--ickpt", metavar="HOST:PORT", help=ickpt_help)
    parser.add_argument("--name", help="the volume's name (default: its container's name)")


@asynccontextmanager
async def checkpoints(args: argparse.Namespace) -> AsyncIterator[CheckpointStore]:
    """The checkpoint store the arguments name: a running ickpt, or the state dir's log."""
    if args.ickpt:
        host, sep, port = args.ickpt.rpartition(":")
        if not sep or not port.isdigit():
            raise CommandError(f"--ickpt {args.ickpt!r} is not HOST:PORT")
        async with RemoteStore(host, int(port)) as store:
            yield store
        return
    store = await open_store(f"file://{(args.state / 'ckpt.log').resolve()}")
    async with store:
        yield store
