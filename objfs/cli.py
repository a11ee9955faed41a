"""The `objfs` command. Its verbs arrive with the components they drive."""

from __future__ import annotations

import argparse
import sys

from objfs.version import VERSION


def daemon_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The argument parser every objfs program starts from."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"{prog} {VERSION}")
    return parser


def not_yet(prog: str, what: str) -> int:
    print(f"{prog}: {what} is not built yet; see the open issues", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = daemon_parser("objfs", "objfs: a POSIX filesystem in an object-storage container")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    up = verbs.add_parser("up", help="start everything on one machine and mount a volume")
    up.add_argument("mountpoint", nargs="?", default="mnt")
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help()
        return 2
    return not_yet("objfs", f"'objfs {args.verb}'")
