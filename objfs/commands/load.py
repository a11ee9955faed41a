"""`objfs load SRC URL`: a local tree into a new volume, written in objfs's own format.

Prints a summary on stdout and every skipped entry on stderr; exits 1 when
entries were skipped (unless --ignore-errors), 2 on bad input, 130 on ^C.
Running the same command again resumes a load that was cut short.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import trio

from iclient.config import MountConfig
from imgr.config import check_volume_name
from imgr.format import AlreadyFormatted
from objfs.cli import CommandError
from objfs.commands.common import add_checkpoint_args, checkpoints, run_verb, volume_name
from objfs.commands.served import add_served_args, served_volume
from objfs.load.entries import loaded_entries
from objfs.load.into import PathTaken
from objfs.load.job import Identity, JobError
from objfs.load.pack import SEGMENT_BYTES, SourceChanged
from objfs.load.run import Outcome, Request, load, load_into
from objfs.load.transfer import Mismatch
from objfs.manifest import ManifestWriter
from objfs.storage import open_store
from objfs.storage.urls import redact

FAILURES = (AlreadyFormatted, JobError, Mismatch, SourceChanged, PathTaken)


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "load",
        help="load a local tree into a new volume (resumable)",
        description="Write the tree SRC into a new volume in URL's container, in objfs's own "
        "format, without a mount. The state dir records progress: after a crash or ^C, the "
        "same command finishes the job.",
    )
    p.add_argument("source", metavar="SRC", type=Path, help="the local directory to load")
    p.add_argument("url", metavar="URL", help="the container (see README: Storage URLs)")
    add_checkpoint_args(p, "the job's progress (load.db), and the embedded default's state dir")
    p.add_argument("--new", action="store_true", help="abandon an unfinished load in --state")
    exclude = "leave out paths (relative to SRC) that match; may be repeated"
    p.add_argument("--exclude", metavar="REGEX", action="append", default=[], help=exclude)
    p.add_argument("--jobs", type=int, default=8, help="segments uploading at once (8)")
    segment = "the size of the objects it writes, in MiB (32)"
    p.add_argument("--segment-mib", type=int, default=SEGMENT_BYTES >> 20, help=segment)
    manifest = "write path, type, size, mode, mtime and hash of every entry"
    p.add_argument("--manifest", metavar="FILE", type=Path, help=manifest)
    into = "load under PATH of the existing volume, through its imgr (the volume must be served)"
    p.add_argument("--into", metavar="PATH", help=into)
    add_served_args(p)
    ignore = "exit 0 even when entries were skipped"
    p.add_argument("--ignore-errors", action="store_true", help=ignore)
    p.set_defaults(handler=_load)


def _load(args: argparse.Namespace) -> int:
    request, mount = _request(args)

    async def main() -> Outcome:
        if mount is not None:
            outcome = await load_into(request, mount)
        else:
            async with open_store(args.url) as store, checkpoints(args) as ckpt:
                outcome = await load(request, store, ckpt)
        if args.manifest:
            await trio.to_thread.run_sync(_write_manifest, outcome, args)
        return outcome

    outcome = run_verb(args, main, FAILURES)
    problems = outcome.job.problems()
    for path, why in problems:
        print(f"objfs load: skipped {os.fsdecode(path)}: {why}", file=sys.stderr)
    print(_summary(outcome, request, len(problems)))
    return 1 if problems and not args.ignore_errors else 0


def _request(args: argparse.Namespace) -> tuple[Request, MountConfig | None]:
    if not args.source.is_dir():
        raise CommandError(f"{args.source}: no such directory")
    if args.jobs < 1:
        raise CommandError(f"--jobs must be at least 1, got {args.jobs}")
    if not 1 <= args.segment_mib <= 1024:
        raise CommandError(f"--segment-mib must be in 1..1024, got {args.segment_mib}")
    for pattern in args.exclude:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise CommandError(f"--exclude {pattern!r}: {exc}") from None
    if args.manifest and not args.manifest.resolve().parent.is_dir():
        raise CommandError(f"--manifest {args.manifest}: no such directory for it")
    volume = check_volume_name(args.name or volume_name(args.url))
    mount = None
    if args.into is not None:
        if not args.into.strip("/"):
            raise CommandError("--into needs a path below the volume's root")
        mount = served_volume(args.url, volume, args.imgr, args.token_file)
        args.rpc_peer = "imgr"
    if mount is not None:
        volume = mount.settings.volume
    source, url, excludes = str(args.source.resolve()), redact(args.url), tuple(args.exclude)
    identity = Identity(source, url, volume, excludes, args.into or "")
    request = Request(
        source=args.source.resolve(),
        state=args.state,
        identity=identity,
        new=args.new,
        jobs=args.jobs,
        segment_bytes=args.segment_mib << 20,
        hashing=args.manifest is not None,
    )
    return request, mount


def _write_manifest(outcome: Outcome, args: argparse.Namespace) -> None:
    with ManifestWriter(args.manifest) as manifest:
        for entry in loaded_entries(outcome.job, args.source.resolve()):
            manifest.write(entry)


def _summary(outcome: Outcome, request: Request, problems: int) -> str:
    identity = request.identity
    where = f"{identity.volume}:{identity.into}" if identity.into else f"volume {identity.volume}"
    if outcome.already_done:
        return f"objfs load: {where} was loaded already; nothing to do"
    tally, before, seconds = outcome.tally, outcome.before, max(outcome.seconds, 1e-3)
    entries, data = tally.entries - before.entries, tally.data_bytes - before.data_bytes
    resumed = f" (resumed: {entries} of them in this run)" if before.entries else ""
    segments = "" if identity.into else f", {outcome.uploaded.segments} segments uploaded"
    skipped = f", {problems} skipped" if problems else ""
    return (
        f"objfs load: {where}: {tally.entries} entries, {tally.data_bytes / 1e6:.1f} MB of data"
        f"{resumed}{segments} in {seconds:.1f} s ({entries / seconds:.0f} entries/s, "
        f"{data / seconds / 1e6:.1f} MB/s){skipped}"
    )
