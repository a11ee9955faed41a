"""The `imgr` daemon: the objfs inode manager."""

from __future__ import annotations

from objfs.cli import daemon_parser, not_yet


def main(argv: list[str] | None = None) -> int:
    daemon_parser("imgr", "the objfs inode manager").parse_args(argv)
    return not_yet("imgr", "the objfs inode manager")
