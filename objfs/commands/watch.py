"""`objfs watch LOCALDIR URL[:/PATH]`: keep a volume directory in step with a local one.

Runs until SIGINT or SIGTERM, then stores what it synced and exits 0.
`objfs watch --status` prints what the state dir's watch has in step and
what fails, whether or not it runs. Settings come from flags or from the
`[watch]` table of a config file (--config), flags winning.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import trio

from iclient.config import MountConfig
from iclient.mount import Mount
from objfs.cli import CommandError
from objfs.commands.common import run_verb, url_and_path, volume_name
from objfs.commands.served import add_served_args, served_volume
from objfs.settings import SettingsError, from_table, from_toml
from objfs.status import serve_http
from objfs.storage.urls import redact
from objfs.watch import status
from objfs.watch.config import WatchSettings
from objfs.watch.run import Options, Watch
from objfs.watch.state import StateError, WatchState
from objfs.watch.sync import Recorder, Syncer
from objfs.watch.target import Target


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "watch",
        help="keep a volume directory in step with a local directory",
        description="Watch LOCALDIR (recursively, with inotify) and put every change into "
        "PATH of the volume at URL (the volume's root without PATH), through the imgr that "
        "serves it. Changes made while it was stopped are found at start.",
    )
    p.add_argument("source", nargs="?", metavar="LOCALDIR")
    p.add_argument("target", nargs="?", metavar="URL[:/PATH]")
    p.add_argument("--delete", action="store_const", const=True, help="propagate deletions")
    p.add_argument("--settle", type=float, metavar="SECONDS",
                   help="upload a file once it was quiet this long (2)")  # fmt: skip
    p.add_argument("--jobs", type=int, help="uploads at once (8)")
    p.add_argument("--state", help="the watch's state dir (.objfs/watch)")
    p.add_argument("--config", help="a config file; its [watch] table holds the settings")
    p.add_argument("--http-port", type=int, help="the status page's port (15348; 0: any)")
    p.add_argument("--retry-max", type=float, metavar="SECONDS",
                   help="the longest wait before a failed path is tried again (300)")  # fmt: skip
    add_served_args(p)
    p.add_argument("--status", action="store_true", help="print the watch's state and exit")
    p.add_argument("--json", action="store_true", help="with --status: as JSON")
    p.set_defaults(handler=_handle)


def _settings(args: argparse.Namespace) -> WatchSettings:
    table = {}
    if args.config:
        table = from_toml(args.config).get("watch", {})
    flags = {key: getattr(args, key) for key in vars(args)}
    flags["token_file"] = str(args.token_file) if args.token_file else None
    try:
        settings = from_table(WatchSettings, table, args.config, flags)
        if not args.status:
            settings.check()
    except SettingsError as exc:
        raise CommandError(str(exc)) from None
    return settings


def _handle(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.status:
        return _status(settings, args.json)
    source = Path(settings.source)
    if not source.is_dir():
        raise CommandError(f"{source}: no such directory")
    url, path = url_and_path(settings.target)
    args.url, args.rpc_peer = url, "imgr"  # for run_verb's one-line errors
    token = Path(settings.token_file) if settings.token_file else None
    mount = served_volume(url, volume_name(url), settings.imgr or None, token)
    state = WatchState(Path(settings.state))
    try:
        state.claim(str(source.resolve()), f"{redact(url)}:{path}")
    except StateError as exc:
        raise CommandError(str(exc)) from None
    try:
        run_verb(args, lambda: _watch(settings, source, path, mount, state))
    finally:
        state.close()
    return 0


def _status(settings: WatchSettings, as_json: bool) -> int:
    if not (Path(settings.state) / "watch.db").exists():
        raise CommandError(f"{settings.state} holds no watch")
    state = WatchState(Path(settings.state))
    try:
        stats = status.state_stats(state)
    finally:
        state.close()
    print(json.dumps(stats, indent=2) if as_json else "\n".join(status.describe(stats)))
    return 1 if stats["failures"] else 0


async def _watch(
    settings: WatchSettings, source: Path, path: str, mount: MountConfig, state: WatchState
) -> None:
    root = os.fsencode(source.resolve())
    options = Options(settings.settle, settings.jobs, settings.delete, settings.retry_max)
    async with Mount.open(mount) as mounted:
        target = Target(mounted.fs, os.fsencode(path), state)
        await target.start()
        recorder = Recorder(state, target)
        watch = Watch(root, Syncer(root, target, recorder, settings.delete), state, options)

        config = {
            "source": str(source),
            "target": f"{redact(mount.settings.store)}:{path}",
            "delete": settings.delete,
            "settle": settings.settle,
            "jobs": settings.jobs,
        }
        app = status.app(state, lambda: _live(watch, recorder), config)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                port = await nursery.start(serve_http, app, settings.http_address,
                                           settings.http_port)  # fmt: skip
                await nursery.start(watch.run)
                print(f"objfs watch: {source} -> {config['target']}; status at "
                      f"http://{settings.http_address}:{port}/", flush=True)  # fmt: skip
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break
        with trio.CancelScope(shield=True):
            await recorder.durable()
    print("objfs watch: stopped; everything synced so far is stored", file=sys.stderr)


def _live(watch: Watch, recorder: Recorder) -> dict:
    """The running watch's figures for its status page."""
    schedule = watch.schedule
    return {
        "due": len(schedule.due),
        "busy": len(schedule.busy),
        "renames": len(schedule.moves),
        "syncs": recorder.uploads,
        "data_bytes": recorder.data_bytes,
        "unrecorded": len(recorder.pending),
    }
