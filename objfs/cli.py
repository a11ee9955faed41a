"""The `objfs` command: one verb per job, each registered by its own module.

A verb module has `register(verbs)`, which adds its subparsers and sets
`handler=function(args) -> int` on them. A handler raises `CommandError`
for bad input: main prints it as one line and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from objfs.version import VERSION

# The modules whose verbs `objfs` offers, in the order `objfs --help` lists them.
VERB_MODULES: tuple[str, ...] = ()


class CommandError(Exception):
    """Bad input or a failed step, said in one line for the user."""


def daemon_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The argument parser every objfs program starts from."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"{prog} {VERSION}")
    return parser


def parser() -> argparse.ArgumentParser:
    p = daemon_parser("objfs", "objfs: a POSIX filesystem in an object-storage container")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name in VERB_MODULES:
        importlib.import_module(name).register(verbs)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return args.handler(args)
    except CommandError as exc:
        print(f"objfs {args.verb}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"objfs {args.verb}: interrupted", file=sys.stderr)
        return 130
