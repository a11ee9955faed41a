"""The `iclient` command: mount a volume through FUSE until SIGINT/SIGTERM or unmount.

iclient run [--config FILE] [flags] [MOUNTPOINT]

It prints "iclient mounted VOLUME at PATH, status on http://H:P/" once the
mount is live, and on a signal (or `fusermount3 -u`) unmounts, then returns
only when everything written is uploaded and in a checkpoint.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

import pyfuse3
import trio

from iclient.config import MountConfig, Settings
from iclient.fuse import FuseOperations, mount_options
from iclient.mount import Mount
from iclient.readahead import set_kernel_readahead
from iclient.status import serve_status
from iclient.wakeups import BusyPoll
from objfs import settings
from objfs.cli import daemon_parser, expected_error
from objfs.debug import log_stacks_on_signal
from objfs.rpc import RpcError
from objfs.storage import StorageError

log = logging.getLogger(__name__)

_INTS = ("memory_mib", "disk_mib", "segment_mib", "uploads", "read_cache_mib", "block_kib",
         "readahead", "page_cache_mib", "http_port", "busy_poll_rate")  # fmt: skip
_FLOATS = ("commit_interval", "cache_seconds")
_STRINGS = ("imgr", "volume", "token", "store", "cache_dir", "http_address")


def parser() -> argparse.ArgumentParser:
    p = daemon_parser("iclient", "objfs client: mount a volume through FUSE")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    run = verbs.add_parser("run", help="mount until SIGINT/SIGTERM or unmount")
    run.add_argument("mountpoint", nargs="?")
    run.add_argument("--config", help="TOML file with the same keys as these flags")
    for name in _STRINGS:
        run.add_argument(f"--{name.replace('_', '-')}", dest=name)
    for name in _INTS:
        run.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int)
    for name in _FLOATS:
        run.add_argument(f"--{name.replace('_', '-')}", dest=name, type=float)
    run.add_argument("-o", dest="options", action="append", help="extra FUSE option")
    run.add_argument("--token-file", help="read the mount token from this file")
    return p


def load(args: argparse.Namespace) -> MountConfig:
    flags = {k: v for k, v in vars(args).items() if k not in ("config", "verb", "token_file")}
    if args.token_file:
        with open(args.token_file) as f:
            flags["token"] = f.read().strip()
    config = MountConfig.from_settings(settings.load(Settings, args.config, flags))
    if not config.settings.mountpoint:
        raise settings.SettingsError("a mountpoint is required")
    if not os.path.isdir(config.settings.mountpoint):
        raise settings.SettingsError(f"mountpoint {config.settings.mountpoint} is not a directory")
    return config


async def run(config: MountConfig) -> None:
    s = config.settings
    async with Mount.open(config) as mount:
        operations = FuseOperations(mount.fs, s.cache_seconds)
        options = mount_options(f"objfs:{s.volume}", s.options, os.geteuid() == 0)
        resolved = os.path.realpath(s.mountpoint)  # before the mount: then it would ask us
        busy_poll = BusyPoll(mount.fs.meter, s.busy_poll_rate)
        pyfuse3.init(operations, s.mountpoint, options)
        try:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(operations.run_invalidations)
                    if s.readahead:
                        nursery.start_soon(_read_ahead, operations, resolved, s)
                    if s.busy_poll_rate:
                        nursery.start_soon(busy_poll.run)
                    nursery.start_soon(log_stacks_on_signal)
                    http_port = await nursery.start(
                        serve_status, mount, busy_poll, s.http_address, s.http_port
                    )
                    nursery.start_soon(_stop_on_signal, signals)
                    print(
                        f"iclient mounted {s.volume} at {s.mountpoint}, "
                        f"status on http://{s.http_address}:{http_port}/",
                        flush=True,
                    )
                    await pyfuse3.main(min_tasks=4, max_tasks=64)
                    nursery.cancel_scope.cancel()
        finally:
            pyfuse3.close(unmount=True)
    log.info("iclient: %s unmounted, everything stored", s.volume)


async def _read_ahead(operations: FuseOperations, mountpoint: str, s: Settings) -> None:
    # The kernel's answer to INIT caps the window at what it proposed (128 KiB): set it after.
    await operations.initialized.wait()
    set_kernel_readahead(mountpoint, s.readahead * s.block_kib)


async def _stop_on_signal(signals: trio.abc.ReceiveChannel[int]) -> None:
    async for signum in signals:
        log.info("iclient: %s received, unmounting", signal.Signals(signum).name)
        pyfuse3.terminate()
        return


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        trio.run(run, load(args))
    except Exception as exc:
        fatal = expected_error(exc, (settings.SettingsError, StorageError, RpcError, OSError))
        if fatal is None:
            raise
        print(f"iclient: {fatal}", file=sys.stderr)
        return 2
    return 0
