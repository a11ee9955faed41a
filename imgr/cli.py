"""The `imgr` command: the daemon (`imgr run`) and its administration verbs.

imgr run [--config FILE] [--volume NAME=URL ...] [flags]   serve until SIGINT/SIGTERM
imgr format NAME URL [--force] [--ickpt HOST:PORT]        make an empty volume
imgr volumes | serve NAME URL [--secret S] | unserve NAME  ask a running imgr
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from typing import Any

import trio

from ickpt.remote import RemoteStore
from ickpt.store import StoreError
from imgr import config as settings
from imgr.api import DEFAULT_PORT
from imgr.daemon import Imgr
from imgr.format import AlreadyFormatted, format_volume
from imgr.ownership import VolumeBusy
from objfs.cli import daemon_parser
from objfs.rpc import ReconnectPolicy, RpcClient, RpcError
from objfs.storage import StorageError, open_store

log = logging.getLogger(__name__)


def parser() -> argparse.ArgumentParser:
    p = daemon_parser("imgr", "objfs inode manager: inode tables, leases, checkpoints, GC")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    run = verbs.add_parser("run", help="serve volumes until SIGINT or SIGTERM")
    run.add_argument("--config", help="TOML file with the same keys as these flags")
    run.add_argument("--address", help="RPC listen address (default 127.0.0.1)")
    run.add_argument("--port", type=int, help="RPC port (default 32356; 0 picks one)")
    run.add_argument("--http-address", dest="http_address", help="status address")
    run.add_argument("--http-port", dest="http_port", type=int, help="status port (15346)")
    run.add_argument("--ickpt", help="the checkpoint service, HOST:PORT (127.0.0.1:32357)")
    run.add_argument("--id", help="this imgr's name in ownership records (HOST:PORT)")
    for name in ("checkpoint_interval", "lease_timeout", "mount_ttl", "owner_ttl"):
        run.add_argument(f"--{name.replace('_', '-')}", dest=name, type=float, metavar="SECONDS")
    run.add_argument("--cache-mib", dest="cache_mib", type=int, help="page cache per volume")
    run.add_argument("--volume", action="append", metavar="NAME=URL", help="serve this volume")
    fmt = verbs.add_parser("format", help="make an empty volume in a container")
    fmt.add_argument("name")
    fmt.add_argument("url")
    fmt.add_argument("--force", action="store_true", help="replace a volume that is there")
    fmt.add_argument("--ickpt", default="127.0.0.1:32357")
    for verb, helptext in (("volumes", "list"), ("serve", "serve"), ("unserve", "stop serving")):
        admin = verbs.add_parser(verb, help=f"{helptext} volumes of a running imgr")
        admin.add_argument("--connect", default=f"127.0.0.1:{DEFAULT_PORT}", metavar="HOST:PORT")
        if verb != "volumes":
            admin.add_argument("name")
        if verb == "serve":
            admin.add_argument("url")
            admin.add_argument("--secret", help="mount token of a file:// or mem:// volume")
    return p


async def run(config: settings.Config) -> None:
    imgr = Imgr(config)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            rpc_port, http_port = await nursery.start(imgr.run)
            print(
                f"imgr listening on {config.address}:{rpc_port}, "
                f"status on http://{config.http_address}:{http_port}/",
                flush=True,
            )
            async for signum in signals:
                log.info("imgr: %s received, stopping", signal.Signals(signum).name)
                with trio.move_on_after(30):
                    await imgr.stop()
                nursery.cancel_scope.cancel()
                break


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise settings.ConfigError(f"{text!r} is not HOST:PORT")
    return host, int(port)


async def format_command(args: argparse.Namespace) -> None:
    settings.check_volume_name(args.name)
    store = open_store(args.url)
    async with RemoteStore(*_address(args.ickpt)) as ckpt, store:
        record = await format_volume(store, ckpt, args.name, force=args.force)
    print(f"formatted volume {args.name}: id {record.volume_id.hex()}")


async def admin_command(args: argparse.Namespace) -> Any:
    policy = ReconnectPolicy(attempts=3)
    async with RpcClient.connect(*_address(args.connect), policy=policy) as client:
        if args.verb == "volumes":
            return await client.call("ListVolumes", {})
        if args.verb == "serve":
            request = {"name": args.name, "url": args.url, "secret": args.secret}
            return await client.call("ServeVolume", request)
        return await client.call("StopServing", {"name": args.name})


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        if args.verb == "run":
            trio.run(run, settings.load(args))
            log.info("imgr: stopped")
        elif args.verb == "format":
            trio.run(format_command, args)
        else:
            answer = trio.run(admin_command, args)
            if answer:
                print(json.dumps(answer, indent=2))
    except (
        settings.ConfigError,
        AlreadyFormatted,
        VolumeBusy,
        StoreError,
        StorageError,
        RpcError,
        OSError,
    ) as exc:
        print(f"imgr: {exc}", file=sys.stderr)
        return 2
    return 0
