"""The `ickpt` daemon: the strictly consistent checkpoint store, served over the retry RPC."""

from __future__ import annotations

import argparse
import logging
import signal
import ssl
import sys

import trio

from ickpt import config as settings
from ickpt.service import handlers
from ickpt.store import StoreError
from objfs.cli import daemon_parser
from objfs.rpc import RpcServer

log = logging.getLogger(__name__)


def parser() -> argparse.ArgumentParser:
    p = daemon_parser("ickpt", "objfs checkpoint service: compare-and-swap records, durably")
    p.add_argument("--config", help="TOML file with the same keys as these flags")
    p.add_argument("--address", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default 32357; 0 picks one)")
    p.add_argument(
        "--store", help="file://PATH (default) or etcd://HOST:PORT[,HOST:PORT...][/KEY-PREFIX]"
    )
    p.add_argument("--tls-cert", dest="tls_cert", help="serve TLS with this certificate")
    p.add_argument("--tls-key", dest="tls_key", help="and this private key")
    return p


async def serve(config: settings.Config) -> None:
    """Serve until SIGINT or SIGTERM, then close the store and return."""
    tls = None
    if config.tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(config.tls_cert, config.tls_key)
    store = await settings.open_store(config.store)
    try:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                server = RpcServer(handlers(store), ssl_context=tls)
                port = await nursery.start(server.serve, config.address, config.port)
                print(f"ickpt listening on {config.address}:{port}", flush=True)
                async for signum in signals:
                    log.info("ickpt: %s received, stopping", signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    break
    finally:
        await store.aclose()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = settings.load(args)
        trio.run(serve, config)
    except (settings.ConfigError, StoreError, OSError, ssl.SSLError) as exc:
        print(f"ickpt: {exc}", file=sys.stderr)
        return 2
    log.info("ickpt: stopped")
    return 0
