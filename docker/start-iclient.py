#!/usr/bin/env python3
"""iclient in a container: the mount token from the store's own credentials, then the mount.

    start-iclient.py [iclient run flags...] MOUNTPOINT

Takes exactly the flags of `iclient run`. Without --token or --token-file, a swift:// or
azure:// store's credentials (in the URL, the environment such as ST_AUTH/ST_USER/ST_KEY,
or the credentials file) make the mount token imgr accepts: a Swift token or a container
SAS. It is handed over through a pipe (--token-file /dev/fd/N), never on a command line
and never in a file left behind. Then this process becomes `iclient run` with the same
flags.
"""

from __future__ import annotations

import os
import sys

from iclient import cli
from objfs.commands.tokens import mount_token
from objfs.settings import SettingsError
from objfs.storage import StorageError


def token_flags(store: str) -> list[str]:
    if store.startswith(("file:", "mem:")):
        raise SettingsError("the mount token of a file:// volume is imgr's secret: --token-file")
    token = mount_token(store, secret="").encode()
    read, write = os.pipe()  # a token is far below a pipe's buffer: the write cannot block
    os.write(write, token)
    os.close(write)
    os.set_inheritable(read, True)
    return ["--token-file", f"/dev/fd/{read}"]


def main(argv: list[str]) -> int:
    args = cli.parser().parse_args(["run", *argv])
    try:
        settings = cli.load(args).settings
        extra = [] if settings.token else token_flags(settings.store)
    except (SettingsError, StorageError, OSError) as exc:
        print(f"start-iclient: {exc}", file=sys.stderr)
        return 2
    os.execvp("iclient", ["iclient", "run", *argv, *extra])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
