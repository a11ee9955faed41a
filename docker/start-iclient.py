#!/usr/bin/env python3
"""iclient in a container: the mount token from the store's own credentials, then the mount.

    start-iclient.py [iclient run flags...] MOUNTPOINT

Takes exactly the flags of `iclient run`. Without --token or --token-file, a swift:// or
azure:// store's credentials (in the URL, the environment such as ST_AUTH/ST_USER/ST_KEY,
or the credentials file) make the mount token imgr accepts: a Swift token or a container
SAS. It is handed over in a file only its user can read, never on a command line. Then
this process becomes `iclient run` with the same flags.
"""

from __future__ import annotations

import os
import sys
import tempfile

from iclient import cli
from objfs.commands.tokens import mount_token
from objfs.settings import SettingsError
from objfs.storage import StorageError


def token_flags(store: str) -> list[str]:
    if store.startswith(("file:", "mem:")):
        raise SettingsError("the mount token of a file:// volume is imgr's secret: --token-file")
    fd, path = tempfile.mkstemp(prefix="objfs-token-")  # mode 0600
    with os.fdopen(fd, "w") as f:
        f.write(mount_token(store, secret=""))
    return ["--token-file", path]


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
