"""The `ickpt` daemon: the objfs checkpoint service."""

from __future__ import annotations

from objfs.cli import daemon_parser, not_yet


def main(argv: list[str] | None = None) -> int:
    daemon_parser("ickpt", "the objfs checkpoint service").parse_args(argv)
    return not_yet("ickpt", "the objfs checkpoint service")
