"""What the fsck tests share: a volume with files on it (then left alone), objfs runs, objects."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from layout.naming import object_name, object_number
from tests import daemons
from tests.deployment import Deployment, ImgrDaemon
from tests.mounts import VOLUME, iclient, mountpoint, serve_volume

MIB = 1 << 20


def objfs(deployment: Deployment, verb: str, url: str, *flags: str) -> subprocess.CompletedProcess:
    """`objfs VERB URL` on the deployment's ickpt and volume."""
    argv = [daemons.command("objfs"), verb, url, "--ickpt", deployment.ickpt, "--name", VOLUME]
    return subprocess.run([*argv, *flags], capture_output=True, text=True, timeout=600)


def fsck_json(deployment: Deployment, url: str, *flags: str) -> tuple[int, dict]:
    done = objfs(deployment, "fsck", url, "--json", *flags)
    assert done.returncode in (0, 1, 4), (done.returncode, done.stderr)
    return done.returncode, json.loads(done.stdout)


@contextmanager
def mounted(deployment: Deployment, imgr: ImgrDaemon, url: str) -> Iterator[Path]:
    with mountpoint() as path, iclient(deployment, imgr, url, path):
        yield path


@contextmanager
def volume_at_rest(deployment: Deployment, backend: str) -> Iterator[tuple[str, Path]]:
    """A volume written through a real mount, then unmounted and its imgr stopped.

    Yields the URL and a local copy of what the mount held (to compare later).
    """
    url, imgr = serve_volume(deployment, backend)
    with mounted(deployment, imgr, url) as path:
        mixed_workload(path)
        expected = deployment.tmp / "expected"
        shutil.copytree(path, expected, symlinks=True)
    assert daemons.stop(imgr.proc) == 0
    yield url, expected


def mixed_workload(root: Path) -> None:
    """Directories, files of several sizes, hard links, symlinks, renames, deletes, a sparse
    file, xattrs, rewrites and truncates: every kind of structure the volume holds."""
    (root / "d1" / "d2").mkdir(parents=True)
    for i, size in enumerate([0, 1, 4095, 4096, 65537, MIB, 3 * MIB + 17]):
        (root / "d1" / f"f{i}").write_bytes(os.urandom(size))
    many = root / "many"
    many.mkdir()
    for i in range(300):
        (many / f"small-{i:03}").write_bytes(f"small file {i}\n".encode() * (i % 7))
    os.link(root / "d1" / "f3", root / "d1" / "d2" / "hard")
    os.symlink("../f1", root / "d1" / "d2" / "sym")
    os.symlink("/an/absolute/target", root / "dangling")
    os.rename(root / "d1" / "f2", root / "renamed")
    os.rename(root / "d1" / "d2", root / "moved")
    (root / "gone").write_bytes(os.urandom(70000))
    os.unlink(root / "gone")
    (root / "empty-dir").mkdir()
    (root / "rmdir-me").mkdir()
    (root / "rmdir-me").rmdir()
    with open(root / "sparse", "wb") as f:
        f.seek(10 * MIB)
        f.write(b"the end")
        f.seek(MIB)
        f.write(b"in the middle")
    with open(root / "d1" / "f6", "r+b") as f:
        f.seek(MIB + 5)
        f.write(os.urandom(200000))  # a rewrite inside a stored file
        f.truncate(2 * MIB)
    os.setxattr(root / "d1" / "f1", "user.colour", b"blue")
    os.setxattr(root / "moved", "user.empty", b"")
    for i in range(50, 300, 3):
        (many / f"small-{i:03}").unlink()


def container_dir(url: str) -> Path:
    assert url.startswith("file://"), url
    return Path(url.removeprefix("file://"))


def segments(url: str) -> list[Path]:
    """The volume's segment objects (objfs-named, not the backup), largest first."""
    found = []
    for path in container_dir(url).iterdir():
        try:
            if object_number(path.name):
                found.append(path)
        except ValueError:
            continue
    return sorted(found, key=lambda p: p.stat().st_size, reverse=True)


def unused_name(url: str, offset: int = 1 << 40) -> str:
    """An objfs object name far above any number the volume handed out."""
    taken = {p.name for p in container_dir(url).iterdir()}
    number = offset
    while object_name(number) in taken:
        number += 1
    return object_name(number)


def same_tree(left: Path, right: Path) -> None:
    """Both trees hold the same names, types, contents and symlink targets."""
    for directory, dirs, files in os.walk(left):
        other = right / Path(directory).relative_to(left)
        assert sorted(dirs + files) == sorted(os.listdir(other)), directory
        for name in files:
            a, b = Path(directory) / name, other / name
            if a.is_symlink():
                assert os.readlink(a) == os.readlink(b), a
            else:
                assert a.read_bytes() == b.read_bytes(), a
