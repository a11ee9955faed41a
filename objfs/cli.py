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
import warnings

from objfs.version import VERSION

# The modules whose verbs `objfs` offers, in the order `objfs --help` lists them.
VERB_MODULES: tuple[str, ...] = (
    "objfs.commands.up",
    "objfs.commands.mounting",
    "objfs.commands.status",
    "objfs.commands.volumes",
    "objfs.commands.fsck",
    "objfs.commands.load",
    "objfs.commands.verify",
    "objfs.commands.watch",
)


class CommandError(Exception):
    """Bad input or a failed step, said in one line for the user."""


def expected_error(
    exc: BaseException, kinds: tuple[type[BaseException], ...]
) -> BaseException | None:
    """`exc` if it is one of `kinds`, or the first such error inside an exception group.

    A daemon's startup failure (a port taken, a bad token) often arrives wrapped
    in a trio nursery's group; the user should still get its one line.
    """
    if isinstance(exc, kinds):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        matched, rest = exc.split(kinds)
        if matched is not None and rest is None:
            while isinstance(matched, BaseExceptionGroup):
                matched = matched.exceptions[0]
            return matched
    return None


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
    # ^C can land between making a trio task's coroutine and starting it; the
    # warning that it was never awaited would only bury the one line below.
    warnings.filterwarnings("ignore", r"coroutine '.*' was never awaited", RuntimeWarning)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return args.handler(args)
    except BaseException as exc:
        # A verb's error or ^C may arrive wrapped in a trio nursery's exception group.
        if expected_error(exc, (KeyboardInterrupt,)) is not None:
            print(f"objfs {args.verb}: interrupted", file=sys.stderr)
            return 130
        error = expected_error(exc, (CommandError,))
        if error is None:
            raise
        print(f"objfs {args.verb}: {error}", file=sys.stderr)
        return 2
