#!/usr/bin/env python3
"""The Swift all-in-one of the Docker image: scripts/services' Swift with its proxy on 0.0.0.0.

    swift-aio.py --dir /srv/swift --port 8080

Runs in the foreground as a container's main process: starts memcached and the proxy,
account, container and object servers (tempauth test:tester/testing), prints one line when
they answer, stops them all on SIGTERM or SIGINT, and exits 1 when one of them dies. The
backends keep to 127.0.0.1; only the proxy listens on every address, on --port. Data, rings,
ports and logs live in --dir: a restart on the same directory has the same objects and ports.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

# The container keeps the repository's layout: /opt/objfs/docker and /opt/objfs/scripts.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts" / "services"))

import lifecycle  # noqa: E402
from common import LOCALHOST, Options, ServiceError, pick_ports  # noqa: E402
from swift_svc import Swift  # noqa: E402

log = logging.getLogger("swift-aio")

EVERY_ADDRESS = "0.0.0.0"


class PublicSwift(Swift):
    """Swift whose proxy listens on every address and on a chosen port."""

    def __init__(self, port: int) -> None:
        self.port = port

    def new_state(self, directory: Path, opts: Options) -> dict:
        # Data on the instance directory (a volume), not on a tmpfs that a restart empties.
        ports = pick_ports(self.port_names)
        if self.port:
            ports["proxy"] = self.port
        return {"devices": str(directory / "devices"), "ports": ports}

    def prepare(self, directory: Path, state: dict, opts: Options) -> list:
        specs = super().prepare(directory, state, opts)
        conf = directory / "conf" / "proxy-server.conf"
        text = conf.read_text()
        conf.write_text(text.replace(f"bind_ip = {LOCALHOST}", f"bind_ip = {EVERY_ADDRESS}", 1))
        return specs


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="swift-aio.py", description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, required=True, help="data, rings and logs")
    port_help = "the proxy's port on a first start (8080; 0 picks one)"
    parser.add_argument("--port", type=int, default=8080, help=port_help)
    return parser.parse_args(argv)


def stop(signum: int, _frame: object) -> None:
    # Raised out of waitpid, so the finally below stops the servers.
    raise SystemExit(0)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="swift-aio: %(message)s")
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    kind, directory = PublicSwift(args.port), args.dir.absolute()
    try:
        port = json.loads(lifecycle.start(kind, directory, Options()))["proxy_port"]
        print(f"swift listening on {EVERY_ADDRESS}:{port}", flush=True)
        # The servers are our children: the first one to exit ends the all-in-one.
        pid, status = os.waitpid(-1, 0)
        log.error("process %d exited (%s); stopping", pid, _describe(status))
        return 1
    except ServiceError as exc:
        print(f"swift-aio: error: {exc}", file=sys.stderr)
        return 1
    finally:
        lifecycle.stop(kind, directory, Options())


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
