#!/usr/bin/env python3
"""imgr in a container: format its volumes on first start, then run it.

    start-imgr.py [imgr run flags...]

Takes exactly the flags of `imgr run`. Each volume they name (in --config's [volumes]
tables or by --volume) that has no checkpoint in ickpt yet is formatted, its container
created if missing; then this process becomes `imgr run` with the same flags. A volume
whose checkpoint is missing while its container holds objfs objects is not formatted
again: the start fails with one line, as `imgr format` without --force does.
"""

from __future__ import annotations

import logging
import os
import sys

import trio

from ickpt.remote import RemoteStore
from ickpt.store import StoreError
from imgr import cli, ownership
from imgr.config import Config, ConfigError, load
from imgr.format import AlreadyFormatted, format_volume
from objfs.rpc import RpcError
from objfs.storage import StorageError, open_store

log = logging.getLogger("start-imgr")


async def format_new_volumes(config: Config) -> None:
    async with RemoteStore(*config.ickpt_address) as ckpt:
        for volume in config.volumes:
            if await ckpt.get(ownership.checkpoint_key(volume.name)):
                log.info("volume %s is formatted already", volume.name)
                continue
            async with open_store(volume.url) as store:
                record = await format_volume(store, ckpt, volume.name)
            log.info("formatted volume %s: id %s", volume.name, record.volume_id.hex())


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config_args = cli.parser().parse_args(["run", *argv])
    try:
        trio.run(format_new_volumes, load(config_args))
    except (ConfigError, AlreadyFormatted, StoreError, StorageError, RpcError, OSError) as exc:
        print(f"start-imgr: {exc}", file=sys.stderr)
        return 2
    os.execvp("imgr", ["imgr", "run", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
