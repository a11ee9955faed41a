"""What the verbs share: the embedded default's state dir, volume names, the checkpoint store.

The embedded default keeps everything under one state dir (`./.objfs` unless
--state says otherwise): the object store `store/`, ickpt's log `ckpt.log`
and per-daemon logs. A verb that needs a volume's checkpoint reads it from a
running ickpt (--ickpt HOST:PORT) or, without one, straight from that log.
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import trio

from ickpt.config import open_store
from ickpt.remote import RemoteStore
from ickpt.store import CheckpointStore, StoreError
from imgr.ownership import VolumeBusy
from objfs.cli import CommandError
from objfs.rpc import RpcError
from objfs.settings import SettingsError
from objfs.storage import AuthError, NotFound, StorageError, Unavailable
from objfs.storage.urls import redact

T = TypeVar("T")

# Failures of the user's input or environment, said in one line.
FAILURES: tuple[type[Exception], ...] = (
    StorageError, StoreError, RpcError, SettingsError, VolumeBusy, OSError,
)  # fmt: skip

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


def url_and_path(text: str) -> tuple[str, str]:
    """URL[:/PATH] split in two: PATH follows the last ':/' that does not start a '://'."""
    start = text.find("://") + 3
    at = text.rfind(":/", start)
    while at >= start:
        if text[at + 2 : at + 3] != "/":
            return text[:at], text[at + 1 :]
        at = text.rfind(":/", start, at)
    return text, ""


def add_checkpoint_args(
    parser: argparse.ArgumentParser, state_help: str = "the embedded default's state dir"
) -> None:
    state_help += f" ({STATE_DIR})"
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


def run_verb(
    args: argparse.Namespace,
    main: Callable[[], Awaitable[T]],
    failures: tuple[type[Exception], ...] = (),
) -> T:
    """trio.run(main) for a verb on args.url, its failures as one-line CommandErrors."""
    # The verb says what it did; the libraries' INFO lines (retries, steps) are noise here.
    logging.getLogger().setLevel(logging.WARNING)
    try:
        try:
            return trio.run(main)
        except BaseExceptionGroup as group:
            # From a nursery (^C too): the first is what went wrong, the rest its consequences.
            raise _first(group) from None
    except (*FAILURES, *failures) as exc:
        raise CommandError(one_line(exc, args)) from exc


def one_line(exc: BaseException, args: argparse.Namespace) -> str:
    text = " ".join(str(exc).split())[:400]  # SDK messages can span lines
    where = redact(args.url)
    if isinstance(exc, Unavailable):
        return f"cannot reach {where}: {_innermost(exc)}"
    if isinstance(exc, AuthError):
        return f"{where} refused the credentials: {text}"
    if isinstance(exc, NotFound):
        return f"{where}: no such container ({text})"
    if isinstance(exc, RpcError) and getattr(args, "rpc_peer", None):
        return f"{args.rpc_peer}: {text}"  # a verb that talks to imgr, not to ickpt
    if isinstance(exc, RpcError | StoreError):
        return f"checkpoint store {args.ickpt or args.state}: {text}"
    return text


def _first(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _innermost(exc: BaseException) -> BaseException:
    """The failure at the bottom of a chain: "[Errno 111] Connection refused", not the SDK's."""
    for _ in range(32):  # a chain is short; this bounds a cyclic one
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc
