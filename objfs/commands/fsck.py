"""`objfs fsck` and `objfs gc`: check a volume (and make the safe repairs), collect orphans."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from imgr.api import Fenced
from layout.naming import object_name
from objfs.cli import CommandError
from objfs.commands.common import add_checkpoint_args, checkpoints, run_verb, volume_name
from objfs.fsck import run
from objfs.fsck.progress import Progress
from objfs.fsck.report import CLEAN, DAMAGED, REPAIRED, Orphan, Report
from objfs.storage import open_store

T = TypeVar("T")

FSCK_EPILOG = f"""\
exit status:
  {CLEAN}  clean: nothing found
  {REPAIRED}  problems were found and all of them repaired
  {DAMAGED}  problems are left: damage, or orphans and lost inodes without --repair
  2  bad input, or fsck could not run (store or checkpoint store unreachable, volume busy)

--repair makes only safe fixes, and only while no imgr serves the volume:
it deletes orphan objects and moves lost inodes to /lost+found as #INODE.
Interrupted, it leaves a volume that fsck can check and repair again."""


def register(verbs: argparse._SubParsersAction) -> None:
    fsck = verbs.add_parser(
        "fsck",
        help="check a volume; --repair makes the safe fixes",
        description="Walk every structure the volume's checkpoint reaches: check record and\n"
        "data checksums, link counts and link tables against the directories, and the\n"
        "space accounting; list damage with the paths it hurts, orphan objects and lost\n"
        "inodes. A volume being served may show the objects of uploads in flight as orphans.",
        epilog=FSCK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fsck.add_argument("url", metavar="URL", help="the volume's container (README: Storage URLs)")
    add_checkpoint_args(fsck)
    fsck.add_argument("--repair", action="store_true", help="make the safe fixes")
    fsck.add_argument("--json", action="store_true", help="everything found, as JSON")
    fsck.set_defaults(handler=fsck_command)
    gc = verbs.add_parser(
        "gc",
        help="delete objects nothing references (what crashed clients left)",
        description="Delete the objects of the container that the volume's checkpoint does not "
        "reach and that are older than --min-age. Safe while the volume is served. Exit 0.",
    )
    gc.add_argument("url", metavar="URL", help="the volume's container (README: Storage URLs)")
    add_checkpoint_args(gc)
    gc.add_argument(
        "--min-age",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="keep objects younger than this (default 3600: a live client's are seconds old)",
    )
    gc.add_argument("--dry-run", action="store_true", help="say what would be deleted")
    gc.add_argument("--json", action="store_true", help="what was deleted and kept, as JSON")
    gc.set_defaults(handler=gc_command)


def fsck_command(args: argparse.Namespace) -> int:
    progress = Progress()

    async def check(store: Any, ckpt: Any, volume: str) -> Report:
        return await run.fsck(store, ckpt, volume, fix=args.repair, progress=progress)

    with progress.shown():
        report = _run(args, check)
    if args.json:
        report.write_json(sys.stdout)
    else:
        report.write_text(sys.stdout)
    return report.exit_code


def gc_command(args: argparse.Namespace) -> int:
    if args.min_age < 0:
        raise CommandError(f"--min-age must be 0 or more, not {args.min_age:g}")
    progress = Progress()

    async def collect(store: Any, ckpt: Any, volume: str) -> run.Collected:
        return await run.gc(
            store, ckpt, volume, min_age=args.min_age, dry_run=args.dry_run, progress=progress
        )

    with progress.shown():
        collected = _run(args, collect)
    if args.json:
        json.dump(_gc_json(collected, args.dry_run), sys.stdout, indent=2)
        print()
        return 0
    verb = "would delete" if args.dry_run else "deleted"
    for orphan in collected.deleted:
        print(f"{verb} object {object_name(orphan.number)} ({orphan.size} bytes, {_age(orphan)})")
    for orphan in collected.kept:
        print(f"kept object {object_name(orphan.number)}: unreferenced but {_age(orphan)}")
    print(
        f"checkpoint {collected.sequence}: {verb} {len(collected.deleted)} orphan objects, "
        f"kept {len(collected.kept)} younger than {args.min_age:g}s"
    )
    return 0


def _run(args: argparse.Namespace, work: Callable[[Any, Any, str], Awaitable[T]]) -> T:
    """`work(store, checkpoint store, volume)` in trio, its failures as one-line CommandErrors."""
    volume = args.name or volume_name(args.url)

    async def main() -> T:
        async with open_store(args.url) as store, checkpoints(args) as ckpt:
            return await work(store, ckpt, volume)

    return run_verb(args, main, (Fenced, run.NoVolume, run.GcRefused))


def _age(orphan: Orphan) -> str:
    if orphan.modified is None:
        return "age unknown"
    return f"{time.time() - orphan.modified:.0f}s old"


def _gc_json(collected: run.Collected, dry_run: bool) -> dict[str, Any]:
    return {
        "checkpoint": collected.sequence,
        "dry_run": dry_run,
        "deleted": [o.to_json() | {"deleted": not dry_run} for o in collected.deleted],
        "kept": [o.to_json() for o in collected.kept],
    }
