"""`objfs verify`: does a mount or a volume hold what a local tree or a manifest says?"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import trio

from layout.errors import LayoutError
from objfs.cli import CommandError
from objfs.commands.common import (
    add_checkpoint_args,
    checkpoints,
    run_verb,
    url_and_path,
    volume_name,
)
from objfs.fsck.run import NoVolume, read_checkpoint
from objfs.manifest import Entry, ManifestError, compare, read_manifest, scan_local
from objfs.storage import open_store
from objfs.volume_reader import NoSuchPath, volume_entries

BATCH = 256  # entries taken from the volume reader per hop between threads

EPILOG = """\
exit status:
  0  equal: every entry the same (directory sizes and atimes are not compared)
  1  different: each difference printed by path on stdout
  2  bad input: no such SRC, an unreadable manifest, an unreachable URL, no such volume

A URL is read from the volume's current checkpoint, without a mount: verify a
volume at rest (one being served may delete what an older checkpoint needs)."""


def register(verbs: argparse._SubParsersAction) -> None:
    verify = verbs.add_parser(
        "verify",
        help="compare a mount or a volume with a local tree or a manifest",
        description="Compare every entry (type, size, content hash, mode, owner, mtime,\n"
        "device number, hard links, xattrs) of a mount or a volume with a local tree\n"
        "(SRC) or a manifest written by objfs load --manifest.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("source", nargs="?", metavar="SRC", help="the local tree expected")
    verify.add_argument("--manifest", type=Path, metavar="FILE", help="the manifest expected")
    verify.add_argument(
        "url",
        metavar="MNT|URL[:/PATH]",
        help="a directory (a mount), or a volume's container (PATH: a directory in it)",
    )
    add_checkpoint_args(verify)
    verify.add_argument("--json", action="store_true", help="the differences as a JSON list")
    verify.set_defaults(handler=verify_command)


def verify_command(args: argparse.Namespace) -> int:
    if (args.source is None) == (args.manifest is None):
        raise CommandError("give either SRC or --manifest FILE, not both nor neither")
    found = Differences(args.json)
    expected = _expected(args, found)
    counted = _Counted(expected)

    def compared(actual: Iterable[Entry]) -> None:
        for line in compare(counted, actual):
            found.add(line)

    if "://" in args.url:
        url, top = url_and_path(args.url)

        async def main() -> None:
            async with open_store(url) as store, checkpoints(args) as ckpt:
                _, record = await read_checkpoint(ckpt, args.name or volume_name(url))
                async with volume_entries(store, record, os.fsencode(top)) as entries:
                    await trio.to_thread.run_sync(
                        compared, _blocking(entries), abandon_on_cancel=True
                    )

    else:
        target = _directory(args.url, "MNT")

        async def main() -> None:
            scan = scan_local(target, on_error=found.unreadable)
            await trio.to_thread.run_sync(compared, scan, abandon_on_cancel=True)

    run_verb(args, main, (NoVolume, LayoutError, ManifestError, NoSuchPath))
    if args.json:
        json.dump(found.lines, sys.stdout, indent=2)
        print()
    print(f"{counted.n} entries, {found.n} differences", file=sys.stderr)
    return 1 if found.n else 0


class Differences:
    """The differences found: printed as they come, or kept for --json."""

    def __init__(self, keep: bool) -> None:
        self.keep = keep
        self.lines: list[str] = []
        self.n = 0

    def add(self, line: str) -> None:
        self.n += 1
        if self.keep:
            self.lines.append(line)
        else:
            print(line, flush=True)

    def unreadable(self, path: bytes, exc: OSError) -> None:
        self.add(f"{path.decode('utf-8', 'backslashreplace')}: cannot read ({exc.strerror})")


class _Counted:
    """The expected entries, counted as they are compared."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries = entries
        self.n = 0

    def __iter__(self) -> Iterator[Entry]:
        for entry in self.entries:
            self.n += 1
            yield entry


def _expected(args: argparse.Namespace, found: Differences) -> Iterable[Entry]:
    if args.manifest is not None:
        try:
            return read_manifest(args.manifest)
        except ManifestError as exc:
            raise CommandError(str(exc)) from None
    return scan_local(_directory(args.source, "SRC"), on_error=found.unreadable)


def _directory(path: str, what: str) -> Path:
    if not os.path.isdir(path):
        raise CommandError(f"{what} {path}: no such directory")
    return Path(path)


def _blocking(entries: trio.MemoryReceiveChannel[Entry]) -> Iterator[Entry]:
    """The channel's entries for a worker thread, a batch per hop into trio."""
    while batch := trio.from_thread.run(_batch, entries):
        yield from batch


async def _batch(entries: trio.MemoryReceiveChannel[Entry]) -> list[Entry]:
    """The next entries available (at least one), or none at the end."""
    try:
        batch = [await entries.receive()]
    except trio.EndOfChannel:
        return []
    while len(batch) < BATCH:
        try:
            batch.append(entries.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            break
    return batch
