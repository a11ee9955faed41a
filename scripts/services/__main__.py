"""Start, stop and inspect the real services the tests run against.

  python3 scripts/services {swift,azurite,etcd} {start,stop,status} --dir DIR

start   print the service JSON (also written to DIR/service.json); a stopped instance
        of DIR restarts on its previous ports with its data
stop    SIGTERM, SIGKILL after the timeout; --purge also deletes the data
status  print JSON with "running"; exit 0 if running, 3 if not
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

# Running the directory puts it first on sys.path, which is how these imports resolve.
import lifecycle
from azurite_svc import Azurite
from common import Kind, Options, ServiceError
from etcd_svc import Etcd
from swift_svc import Swift

KINDS: dict[str, type[Kind]] = {"swift": Swift, "azurite": Azurite, "etcd": Etcd}
EXIT_FAILED = 1
EXIT_NOT_RUNNING = 3


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="services", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--dir", required=True, type=Path, help="instance directory")
    parser.add_argument(
        "--timeout", type=float, help="readiness deadline (start) or SIGTERM grace (stop)"
    )
    parser.add_argument("--purge", action="store_true", help="stop: also delete the data")
    parser.add_argument("--azurite-bin", help="azurite-blob executable")
    parser.add_argument("-q", "--quiet", action="store_true", help="only print errors")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    kind = KINDS[args.kind]()
    directory = args.dir.absolute()
    opts = Options(timeout=args.timeout, purge=args.purge, azurite_bin=args.azurite_bin)
    if args.action == "start":
        sys.stdout.write(lifecycle.start(kind, directory, opts))
        return 0
    if args.action == "stop":
        lifecycle.stop(kind, directory, opts)
        return 0
    running, report = lifecycle.status(kind, directory)
    print(json.dumps(report, indent=2))
    return 0 if running else EXIT_NOT_RUNNING


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    level = logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format=f"services {args.kind}: %(message)s")
    # SystemExit unwinds through the cleanup of a half-done start, unlike the default action.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        return run(args)
    except ServiceError as exc:
        print(f"services {args.kind} {args.action}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"services {args.kind} {args.action}: interrupted", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
