"""A counter behind the retry RPC, for tests: `python counter_server.py --port 0`.

Prints the bound port on its first stdout line. `increment` is deliberately
not idempotent: it returns the new count, so a request run twice shows.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from objfs.rpc import InvalidArgument, RpcServer  # noqa: E402


def handlers() -> dict:
    state = {"count": 0}

    async def increment(session, args):
        await trio.sleep(0)  # let a cut connection race with the running handler
        state["count"] += 1
        return state["count"]

    async def get(session, args):
        return state["count"]

    async def fail(session, args):
        raise InvalidArgument(f"refused {args!r}")

    return {"increment": increment, "get": get, "fail": fail}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    server = RpcServer(handlers())
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve, options.host, options.port)
        print(port, flush=True)


if __name__ == "__main__":
    trio.run(main)
