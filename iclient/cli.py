"""The `iclient` daemon: the objfs FUSE client."""

from __future__ import annotations

from objfs.cli import daemon_parser, not_yet


def main(argv: list[str] | None = None) -> int:
    daemon_parser("iclient", "the objfs FUSE client").parse_args(argv)
    return not_yet("iclient", "the objfs FUSE client")
