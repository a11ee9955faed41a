"""What the verify tests share: a tree with every kind of entry, and runs of `objfs verify`."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path

from tests import daemons

MIB = 1 << 20
ODD_NAME = b"caf\xe9-latin1"  # not UTF-8


def verify(*args: str | Path) -> subprocess.CompletedProcess:
    argv = [daemons.command("objfs"), "verify", *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600)


def copy_tree(src: Path, dst: Path) -> None:
    """`cp -a`: contents, hard links, modes, owners, times and xattrs."""
    subprocess.run(["cp", "-a", f"{src}/.", str(dst)], check=True, timeout=600)


def every_kind(root: Path) -> None:
    """Files (empty, sparse, large), hard links, symlinks, a fifo, a socket, a char device,
    setuid and sticky modes, user xattrs and a non-UTF-8 name, under `root`."""
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "empty").write_bytes(b"")
    (root / "dir" / "data").write_bytes(os.urandom(3 * MIB + 5))
    with open(root / "sparse", "wb") as f:
        f.seek(4 * MIB)
        f.write(b"after a hole")
        f.truncate(6 * MIB)
    os.link(root / "dir" / "data", root / "dir" / "sub" / "hard")
    os.link(root / "dir" / "data", root / "hard2")
    os.symlink("dir/data", root / "link")
    os.symlink("/nowhere/at/all", root / "dangling")
    os.mkfifo(root / "fifo")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "socket"))
    os.mknod(root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    (root / "setuid").write_bytes(b"#!/bin/sh\n")
    os.chmod(root / "setuid", 0o4755)
    os.chmod(root / "empty-dir", 0o1777)
    os.setxattr(root / "dir" / "data", "user.colour", b"blue")
    os.setxattr(root / "empty", "user.empty", b"")
    (Path(os.fsdecode(bytes(root) + b"/" + ODD_NAME))).write_bytes(b"odd")
    os.chown(root / "empty", 1234, 5678)
    os.utime(root / "dir" / "sub", ns=(1, 1_600_000_000_123_456_789))


def differences(done: subprocess.CompletedProcess) -> list[str]:
    return done.stdout.splitlines()
