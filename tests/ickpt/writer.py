"""Test helper run as a subprocess: creates keys k000000, k000001, ... one put at a time.

  python writer.py log PATH | etcd ENDPOINT[,ENDPOINT...] PREFIX | daemon PORT

After each acknowledged put it prints "INDEX VERSION" and flushes, so the test knows
exactly which puts were acknowledged when it kills this process with SIGKILL.
"""

from __future__ import annotations

import sys

import trio

from ickpt.etcdstore import EtcdStore
from ickpt.logstore import LogStore
from ickpt.remote import RemoteStore
from ickpt.store import CheckpointStore


def value_for(index: int) -> bytes:
    return f"value-{index}-".encode() * (index % 50 + 1)


async def write_until_killed(store: CheckpointStore) -> None:
    index = 0
    while True:
        version = await store.put(f"k{index:06d}", value_for(index), 0)
        sys.stdout.write(f"{index} {version}\n")
        sys.stdout.flush()
        index += 1


async def main(argv: list[str]) -> None:
    if argv[0] == "log":
        await write_until_killed(await LogStore.open(argv[1]))
    elif argv[0] == "etcd":
        await write_until_killed(EtcdStore(argv[1].split(","), prefix=argv[2]))
    else:
        async with RemoteStore("127.0.0.1", int(argv[1])) as store:
            await write_until_killed(store)


if __name__ == "__main__":
    trio.run(main, sys.argv[1:])
