"""`objfs watch`: every kind of change, made while it runs and while it is stopped, reaches
the volume; deletions only with --delete; renames are renames; bursts are one upload."""

from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path

from tests import daemons
from tests.commands.stacks import Leftovers, objfs, one_line_error
from tests.watch.watching import DEADLINE, serve, start_watch, temps_in, watch

MIB = 1 << 20
ODD_NAME = b"caf\xe9"  # not UTF-8
SETTLE = ["--settle", "0.3", "--retry-max", "1"]


def first_tree(root: Path) -> None:
    """Files, dirs, a symlink, special files, modes, owners, times, xattrs, an odd name."""
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "gone-dir" / "inside").mkdir(parents=True)
    (root / "hello.txt").write_text("hello\n")
    (root / "log").write_bytes(b"line\n" * 100)
    (root / "docs" / "deep" / "data").write_bytes(os.urandom(2 * MIB + 3))
    (root / "docs" / "old-name").write_bytes(b"renamed soon\n")
    (root / "gone-dir" / "inside" / "f").write_bytes(b"deleted soon\n")
    (root / "doomed").write_bytes(b"deleted soon\n")
    (root / "empty").write_bytes(b"")
    os.symlink("hello.txt", root / "link")
    os.mkfifo(root / "fifo")
    os.mknod(root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    (root / "setuid").write_bytes(b"#!/bin/sh\n")
    os.chown(root / "setuid", 1234, 5678)
    os.chmod(root / "setuid", 0o4755)
    os.setxattr(root / "hello.txt", "user.colour", b"blue")
    os.setxattr(root / "docs", "user.binary", bytes(range(256)))
    os.utime(root / "empty", ns=(1_500_000_000_000_000_001, 1_400_000_000_000_000_002))
    (Path(os.fsdecode(bytes(root) + b"/" + ODD_NAME))).write_bytes(b"odd")


def change_while_running(root: Path) -> None:
    with open(root / "log", "ab") as f:
        f.write(b"appended\n")
    (root / "hello.txt").write_text("overwritten\n")
    (root / "new").write_bytes(os.urandom(70_000))
    os.rename(root / "docs" / "old-name", root / "docs" / "new-name")
    os.rename(root / "docs", root / "documents")  # a directory with all it holds
    (root / "doomed").unlink()
    shutil.rmtree(root / "gone-dir")
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "b" / "c" / "leaf").write_bytes(b"in a new dir\n")
    os.remove(root / "link")
    os.symlink("documents/deep/data", root / "link")
    os.chmod(root / "log", 0o600)
    os.setxattr(root / "new", "user.added", b"yes")
    os.removexattr(root / "hello.txt", "user.colour")


def change_while_stopped(root: Path) -> None:
    with open(root / "log", "ab") as f:
        f.write(b"appended while stopped\n")
    (root / "stopped-new").write_bytes(b"made while stopped\n")
    os.rename(root / "a", root / "z")
    (root / "z" / "b" / "later").mkdir()
    (root / "z" / "b" / "later" / "f").write_bytes(b"later\n")
    (root / "new").unlink()
    os.rename(root / "documents" / "new-name", root / "renamed-while-stopped")
    os.chmod(root / "hello.txt", 0o640)
    os.utime(root / "empty", ns=(1_500_000_000_000_000_003, 1_400_000_000_000_000_004))


def test_every_change_converges_with_delete(tmp_path, leftovers: Leftovers):
    served = serve(leftovers, tmp_path)
    local, state = tmp_path / "local", tmp_path / "wstate"
    local.mkdir()
    first_tree(local)
    watcher = watch(leftovers, local, served.target, state, "--delete", *SETTLE)
    watcher.in_step(local, served.mirror)

    change_while_running(local)
    watcher.in_step(local, served.mirror)
    assert not (served.mirror / "doomed").exists()
    assert (served.mirror / "a" / "b" / "c" / "leaf").read_bytes() == b"in a new dir\n"

    watcher.stop()
    change_while_stopped(local)
    watcher = watch(leftovers, local, served.target, state, "--delete", *SETTLE)
    watcher.in_step(local, served.mirror)
    assert temps_in(served.mirror) == []
    watcher.stop()
    served.stop()
    stored = served.verify_stored(local)
    assert stored.returncode == 0, stored.stdout + stored.stderr


def test_without_delete_deletions_stay_in_the_volume(tmp_path, leftovers: Leftovers):
    served = serve(leftovers, tmp_path)
    local, state = tmp_path / "local", tmp_path / "wstate"
    (local / "dir").mkdir(parents=True)
    (local / "file").write_bytes(b"kept\n")
    (local / "dir" / "inner").write_bytes(b"kept too\n")
    watcher = watch(leftovers, local, served.target, state, *SETTLE)
    watcher.in_step(local, served.mirror)

    (local / "file").unlink()
    shutil.rmtree(local / "dir")
    (local / "added").write_bytes(b"after the deletions\n")
    # Quiet first: the mount reads nothing while the watcher writes.
    watcher.wait("the new file", lambda: watcher.quiet() and (served.mirror / "added").exists())
    watcher.stop()
    (local / "added").unlink()  # and one deletion while it is stopped
    watcher = watch(leftovers, local, served.target, state, *SETTLE)
    watcher.wait("the start-up scan", watcher.quiet)
    assert (served.mirror / "file").read_bytes() == b"kept\n"
    assert (served.mirror / "dir" / "inner").read_bytes() == b"kept too\n"
    assert (served.mirror / "added").read_bytes() == b"after the deletions\n"


def test_renames_move_without_uploading_again(tmp_path, leftovers: Leftovers):
    served = serve(leftovers, tmp_path)
    local, state = tmp_path / "local", tmp_path / "wstate"
    (local / "tree" / "sub").mkdir(parents=True)
    (local / "big").write_bytes(os.urandom(16 * MIB))
    (local / "tree" / "sub" / "part").write_bytes(os.urandom(4 * MIB))
    watcher = watch(leftovers, local, served.target, state, *SETTLE)
    watcher.in_step(local, served.mirror)
    uploaded = watcher.stats()["data_bytes"]
    inode = (served.mirror / "big").stat().st_ino

    os.rename(local / "big", local / "big-renamed")
    os.rename(local / "tree", local / "tree-renamed")
    watcher.in_step(local, served.mirror)
    assert watcher.stats()["data_bytes"] == uploaded
    assert (served.mirror / "big-renamed").stat().st_ino == inode


def test_a_burst_of_writes_is_one_upload(tmp_path, leftovers: Leftovers):
    served = serve(leftovers, tmp_path)
    local, state = tmp_path / "local", tmp_path / "wstate"
    local.mkdir()
    watcher = watch(leftovers, local, served.target, state, "--settle", "1")
    watcher.in_step(local, served.mirror)
    before = watcher.stats()
    # A write every 0.25 s for 3 s: each restarts the settle timer of 1 s.
    with open(local / "growing", "wb") as f:
        for _ in range(12):
            f.write(os.urandom(100_000))
            f.flush()
            time.sleep(0.25)
    watcher.in_step(local, served.mirror)
    after = watcher.stats()
    assert after["data_bytes"] - before["data_bytes"] == 1_200_000
    assert after["syncs"] - before["syncs"] <= 2  # the file, and its directory's mtime


def test_directories_made_later_are_watched(tmp_path, leftovers: Leftovers):
    served = serve(leftovers, tmp_path)
    local, state = tmp_path / "local", tmp_path / "wstate"
    local.mkdir()
    watcher = watch(leftovers, local, served.target, state, *SETTLE)
    watcher.in_step(local, served.mirror)

    deep = local / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "at-once").write_bytes(b"written as the dirs were made\n")
    watcher.in_step(local, served.mirror)
    (deep / "afterwards").write_bytes(b"needs the watch on a/b/c\n")
    (deep / "d").mkdir()
    (deep / "d" / "deeper").write_bytes(b"and on a/b/c/d\n")
    watcher.in_step(local, served.mirror)


def test_a_restart_uploads_only_what_changed_meanwhile(tmp_path, leftovers: Leftovers):
    served = serve(leftovers, tmp_path)
    local, state = tmp_path / "local", tmp_path / "wstate"
    local.mkdir()
    for i in range(4):
        (local / f"f{i}").write_bytes(os.urandom(MIB))
    watcher = watch(leftovers, local, served.target, state, *SETTLE)
    watcher.in_step(local, served.mirror)
    watcher.stop()

    with open(local / "f1", "ab") as f:
        f.write(b"x" * 1000)
    (local / "added").write_bytes(b"y" * 2000)
    os.chmod(local / "f2", 0o600)  # metadata alone: no data
    os.utime(local / "f3")  # a touch: same content, no data
    watcher = watch(leftovers, local, served.target, state, *SETTLE)
    watcher.in_step(local, served.mirror)
    assert watcher.stats()["data_bytes"] == MIB + 1000 + 2000


def test_state_dir_of_another_watch_is_refused(tmp_path, leftovers: Leftovers):
    served = serve(leftovers, tmp_path)
    local, state = tmp_path / "local", tmp_path / "wstate"
    (local / "dir").mkdir(parents=True)
    (local / "dir" / "f").write_bytes(b"from the config file\n")
    config = tmp_path / "watch.toml"
    config.write_text(
        f'[watch]\nsource = "{local}"\ntarget = "{served.target}"\nstate = "{state}"\n'
        "settle = 0.2\nhttp_port = 0\ndelete = true\n"
    )
    watcher = start_watch(leftovers, [daemons.command("objfs"), "watch", "--config", str(config)])
    watcher.in_step(local, served.mirror)
    shutil.rmtree(local / "dir")  # delete = true came from the file
    watcher.in_step(local, served.mirror)
    watcher.stop()

    other = tmp_path / "other"
    other.mkdir()
    refused = objfs("watch", str(other), served.target, "--state", str(state),
                    "--http-port", "0", timeout=DEADLINE)  # fmt: skip
    line = one_line_error(refused)
    assert str(state) in line and str(local) in line, line
