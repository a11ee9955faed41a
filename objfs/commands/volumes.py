"""`objfs mkfs` and `objfs destroy`: make a volume in an empty container, or delete one.

mkfs formats only a container that holds nothing at all, so it can never
bury another volume's objects (or anyone's) under a new one. destroy takes
the volume from whoever could serve it (the ownership record imgr keeps in
the checkpoint store; refused while an imgr serves it), deletes its
checkpoint record, then every object in the container and, on Swift, the
claim containers of its put-if-absent writes, and last the ownership
record. Once the checkpoint record is gone no imgr can serve the volume, so
an interrupted destroy is simply run again; it takes its own ownership
record back at once because every destroy claims under the same id.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import trio

from ickpt.store import CheckpointStore, Conflict
from imgr import ownership
from imgr.config import Config as ImgrConfig
from imgr.config import check_volume_name
from imgr.format import AlreadyFormatted, format_volume
from objfs.cli import CommandError
from objfs.commands.common import add_checkpoint_args, checkpoints, run_verb, volume_name
from objfs.storage import (
    NotFound,
    ObjectStore,
    RetryingStore,
    open_store,
)
from objfs.storage.urls import redact

DELETIONS = 32  # deletions in flight: enough to hide each request's latency
PROGRESS_FROM = 1000  # a terminal shows progress for containers at least this big
PROGRESS_EVERY = 0.5  # seconds between progress lines
# One id for every destroy on this host: a run after an interrupted one takes over at once.
OWNER = f"objfs destroy on {socket.gethostname()}"


def register(verbs: argparse._SubParsersAction) -> None:
    mkfs = verbs.add_parser(
        "mkfs",
        help="make an empty volume in an empty container",
        description="Format a new volume in URL's container, which must hold no object at all.",
    )
    mkfs.add_argument("url", metavar="URL", help="the container (see README: Storage URLs)")
    add_checkpoint_args(mkfs)
    mkfs.set_defaults(handler=lambda args: _run(_mkfs, args))
    destroy = verbs.add_parser(
        "destroy",
        help="delete a volume: every object in its container, and its checkpoint",
        description="Delete every object in URL's container (it stays, empty), the Swift "
        "claim containers, and the volume's records in the checkpoint store. Asks first "
        "on a terminal; elsewhere --yes is required.",
    )
    destroy.add_argument("url", metavar="URL", help="the container (see README: Storage URLs)")
    destroy.add_argument("--yes", action="store_true", help="do not ask")
    add_checkpoint_args(destroy)
    destroy.set_defaults(handler=lambda args: _run(_destroy, args))


def _run(main: Callable[[argparse.Namespace], Awaitable[None]], args: argparse.Namespace) -> int:
    run_verb(args, lambda: main(args), (AlreadyFormatted,))
    return 0


def _volume(args: argparse.Namespace) -> str:
    return check_volume_name(args.name or volume_name(args.url))


async def _count(store: ObjectStore) -> int:
    return sum([1 async for _ in store.list()])


async def _pages(store: ObjectStore) -> AsyncIterator[list[str]]:
    start_after = None
    while True:
        page = await store.list_page(start_after=start_after)
        yield [info.name for info in page.items]
        if page.next_start_after is None:
            return
        start_after = page.next_start_after


async def _mkfs(args: argparse.Namespace) -> None:
    name = _volume(args)
    async with open_store(args.url) as store, checkpoints(args) as ckpt:
        await store.ensure_container()
        count = await _count(store)
        if count:
            raise CommandError(
                f"{redact(args.url)} holds {count} object(s); mkfs wants an empty container "
                "(objfs destroy empties one)"
            )
        if await ckpt.get(ownership.checkpoint_key(name)) is not None:
            raise CommandError(
                f"the checkpoint store already holds a volume {name}: "
                "destroy it first, or give this one another --name"
            )
        record = await format_volume(store, ckpt, name)
    print(f"formatted volume {name} at {redact(args.url)}: id {record.volume_id.hex()}")


async def _destroy(args: argparse.Namespace) -> None:
    name = _volume(args)
    where = redact(args.url)
    async with open_store(args.url) as store, checkpoints(args) as ckpt:
        try:
            count = await _count(store)
        except NotFound:
            raise CommandError(f"{where}: no such container") from None
        if not args.yes:
            await _confirm(f"delete volume {name} at {where} ({count} objects)? [y/N] ")
        version = await ownership.claim(ckpt, name, OWNER, ImgrConfig.owner_ttl)
        await _drop_checkpoint(ckpt, name)
        deleted = await _delete_all(_pages(store), store.delete, count)
        left = await _count(store)
        if left:
            raise CommandError(
                f"{left} object(s) appeared in {where} while deleting (is a client still "
                "writing?); run destroy again"
            )
        claims = await _drop_claims(store)
        await ownership.give_up(ckpt, name, version)
    also = f" and {claims} claim container(s)" if claims is not None else ""
    print(f"destroyed volume {name}: deleted {deleted} object(s){also}; {where} is empty")


async def _confirm(question: str) -> None:
    if not sys.stdin.isatty():
        raise CommandError("not a terminal to ask on: pass --yes to delete; nothing deleted")
    try:
        answer = await trio.to_thread.run_sync(input, question, abandon_on_cancel=True)
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise CommandError("not confirmed; nothing deleted")


async def _drop_checkpoint(ckpt: CheckpointStore, name: str) -> None:
    key = ownership.checkpoint_key(name)
    found = await ckpt.get(key)
    if found is None:
        return  # never formatted, or an earlier destroy got this far
    try:
        await ckpt.delete(key, found[0])
    except Conflict:
        raise CommandError(
            f"volume {name}: its checkpoint changed under destroy (an imgr still serving it?)"
        ) from None


async def _drop_claims(store: ObjectStore) -> int | None:
    """Delete the Swift claim containers of `store`; how many (None: not Swift)."""
    from objfs.storage.swift import SwiftStore  # the SDK loads only when destroying

    backend = store.inner if isinstance(store, RetryingStore) else store
    if not isinstance(backend, SwiftStore):
        return None
    return await _delete_all(backend.claim_pages(), backend.delete_claim, None)


async def _delete_all(
    pages: AsyncIterator[list[str]], delete: Callable[[str], Awaitable[None]], total: int | None
) -> int:
    """Delete every name of every page, DELETIONS at a time; how many."""
    progress = _Progress(total)
    limiter = trio.CapacityLimiter(DELETIONS)

    async def delete_one(name: str) -> None:
        async with limiter:
            try:
                await delete(name)
            except NotFound:
                pass  # deleted meanwhile (an earlier run's request that finished late)
        progress.step()

    try:
        async for page in pages:
            # The next page is listed only once this one is deleted: a local
            # directory's listing must not race deletions in it.
            async with trio.open_nursery() as nursery:
                for name in page:
                    nursery.start_soon(delete_one, name)
    finally:
        progress.done()
    return progress.count


class _Progress:
    """A "deleted N of M" line on a terminal, for big containers only."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.count = 0
        self._shown = False
        self._next = trio.current_time()
        self._on = sys.stderr.isatty() and total is not None and total >= PROGRESS_FROM

    def step(self) -> None:
        self.count += 1
        if self._on and trio.current_time() >= self._next:
            self._next = trio.current_time() + PROGRESS_EVERY
            print(f"\rdeleted {self.count} of {self.total}", end="", file=sys.stderr, flush=True)
            self._shown = True

    def done(self) -> None:
        if self._shown:
            print(f"\rdeleted {self.count} of {self.total}", file=sys.stderr, flush=True)
