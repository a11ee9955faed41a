#!/usr/bin/env python3
"""A container's health check: exit 0 when every target answers, 1 (and why) when one does not.

    healthcheck.py http://127.0.0.1:15346/volume/objfs tcp://127.0.0.1:32357

http:// and https:// targets must answer 200; tcp://HOST:PORT must accept a connection.
Stdlib only: it runs in the objfs image and in the Swift one.
"""

from __future__ import annotations

import socket
import sys
import urllib.error
import urllib.request
from urllib.parse import urlsplit

TIMEOUT = 3.0
# Compose files set no proxy variables, but a host's may leak in: never proxy a local check.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def check(target: str) -> str | None:
    """None if `target` answers as it should, else what went wrong."""
    parts = urlsplit(target)
    try:
        if parts.scheme == "tcp":
            with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT):
                return None
        if parts.scheme in ("http", "https"):
            with OPENER.open(target, timeout=TIMEOUT) as answer:
                return None if answer.status == 200 else f"answered {answer.status}"
    except urllib.error.HTTPError as exc:
        return f"answered {exc.code}"
    except (OSError, ValueError) as exc:
        return str(exc)
    return "not a tcp://, http:// or https:// target"


def main(targets: list[str]) -> int:
    if not targets:
        print("usage: healthcheck.py TARGET...", file=sys.stderr)
        return 2
    failures = [(target, check(target)) for target in targets]
    failures = [(target, why) for target, why in failures if why is not None]
    for target, why in failures:
        print(f"healthcheck: {target}: {why}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
