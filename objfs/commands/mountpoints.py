"""Mount points: what is mounted where, and whether a directory can take a new objfs mount."""

from __future__ import annotations

import errno
import logging
import os
import re
import subprocess
from pathlib import Path

from objfs.cli import CommandError

log = logging.getLogger(__name__)

OBJFS_TYPE = "fuse.objfs"  # the type iclient's mounts show in /proc/mounts (subtype=objfs)
MOUNTINFO = Path("/proc/self/mountinfo")
_OCTAL = re.compile(r"\\([0-7]{3})")


def mounted_type(path: Path) -> str | None:
    """The filesystem type mounted exactly at `path` (the topmost one), or None."""
    found = None
    for line in MOUNTINFO.read_text().splitlines():
        fields = line.split()
        # Fields: id, parent, dev, root, mount point, options, optional..., "-", type, ...
        target = _OCTAL.sub(lambda m: chr(int(m[1], 8)), fields[4])  # spaces come as \040
        if target == str(path):
            found = fields[fields.index("-") + 1]
    return found


def absolute(path: Path) -> Path:
    """`path` made absolute with symlinks resolved, without stat-ing a dead mount on it."""
    return Path(os.path.realpath(path))


def unmount_lazily(path: Path) -> None:
    """Detach a FUSE mount whose daemon is gone (the kernel answers ENOTCONN on it)."""
    done = subprocess.run(
        ["fusermount3", "-u", "-z", str(path)], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise CommandError(f"cannot unmount the dead mount on {path}: {done.stderr.strip()}")


def prepare(path: Path, *, create: bool) -> Path:
    """The absolute mount point, ready for a new objfs mount, or CommandError saying why not.

    `create` makes a missing directory (its parent must exist). A dead objfs
    mount left by a crash is detached, and said; anything else mounted there
    is refused.
    """
    path = absolute(path)
    try:
        path.stat()
    except FileNotFoundError:
        if not create:
            raise CommandError(f"mount point {path} does not exist") from None
        try:
            path.mkdir()
        except OSError as exc:
            raise CommandError(f"cannot create mount point {path}: {exc.strerror}") from None
    except OSError as exc:
        if exc.errno != errno.ENOTCONN or mounted_type(path) != OBJFS_TYPE:
            raise CommandError(f"mount point {path}: {exc.strerror}") from None
        unmount_lazily(path)
        print(f"objfs: detached a dead objfs mount left on {path} by a crash")
        log.warning("detached a dead objfs mount on %s", path)
    if not path.is_dir():
        raise CommandError(f"mount point {path} is not a directory")
    kind = mounted_type(path)
    if kind is not None:
        raise CommandError(f"{path} is already a mount point ({kind}); unmount it first")
    return path
