"""mkdir/rmdir, directory link counts, and readdir."""

from __future__ import annotations

import errno
import os

import pytest


def touch(path, data=b""):
    with open(path, "wb") as f:
        f.write(data)


@pytest.mark.core
def test_mkdir_creates_an_empty_directory(fsroot):
    os.mkdir(fsroot / "d")
    st = os.stat(fsroot / "d")
    assert (st.st_mode & 0o170000) == 0o040000
    assert os.listdir(fsroot / "d") == []


@pytest.mark.core
def test_mkdir_existing_is_eexist(fsroot):
    os.mkdir(fsroot / "d")
    touch(fsroot / "f")
    os.symlink("nowhere", fsroot / "l")
    for name in ["d", "f", "l"]:
        with pytest.raises(OSError) as exc:
            os.mkdir(fsroot / name)
        assert exc.value.errno == errno.EEXIST, name


@pytest.mark.core
def test_mkdir_missing_parent_is_enoent(fsroot):
    with pytest.raises(OSError) as exc:
        os.mkdir(fsroot / "a" / "b")
    assert exc.value.errno == errno.ENOENT


def test_mkdir_under_a_file_is_enotdir(fsroot):
    touch(fsroot / "f")
    with pytest.raises(OSError) as exc:
        os.mkdir(fsroot / "f" / "d")
    assert exc.value.errno == errno.ENOTDIR


@pytest.mark.parametrize("mode", [0o700, 0o755, 0o1777, 0o555, 0o000])
def test_mkdir_mode(fsroot, mode):
    old = os.umask(0)
    try:
        os.mkdir(fsroot / "d", mode)
    finally:
        os.umask(old)
    assert os.stat(fsroot / "d").st_mode & 0o7777 == mode


def test_deep_nesting(fsroot):
    path = fsroot
    for i in range(30):
        path = path / f"level{i}"
        os.mkdir(path)
    touch(path / "leaf", b"deep")
    with open(path / "leaf", "rb") as f:
        assert f.read() == b"deep"


@pytest.mark.core
def test_rmdir_removes_empty_directory(fsroot):
    os.mkdir(fsroot / "d")
    os.rmdir(fsroot / "d")
    assert os.listdir(fsroot) == []
    with pytest.raises(OSError) as exc:
        os.stat(fsroot / "d")
    assert exc.value.errno == errno.ENOENT


@pytest.mark.core
def test_rmdir_missing_is_enoent(fsroot):
    with pytest.raises(OSError) as exc:
        os.rmdir(fsroot / "missing")
    assert exc.value.errno == errno.ENOENT


@pytest.mark.core
def test_rmdir_non_empty_is_enotempty(fsroot):
    os.mkdir(fsroot / "d")
    touch(fsroot / "d" / "f")
    with pytest.raises(OSError) as exc:
        os.rmdir(fsroot / "d")
    assert exc.value.errno == errno.ENOTEMPTY
    assert os.listdir(fsroot / "d") == ["f"]


def test_rmdir_with_only_a_subdirectory_is_enotempty(fsroot):
    os.makedirs(fsroot / "d" / "sub")
    with pytest.raises(OSError) as exc:
        os.rmdir(fsroot / "d")
    assert exc.value.errno == errno.ENOTEMPTY


def test_rmdir_after_emptying_works(fsroot):
    os.mkdir(fsroot / "d")
    for i in range(5):
        touch(fsroot / "d" / f"f{i}")
    for i in range(5):
        os.unlink(fsroot / "d" / f"f{i}")
    os.rmdir(fsroot / "d")
    assert os.listdir(fsroot) == []


@pytest.mark.core
def test_rmdir_file_is_enotdir(fsroot):
    touch(fsroot / "f")
    with pytest.raises(OSError) as exc:
        os.rmdir(fsroot / "f")
    assert exc.value.errno == errno.ENOTDIR


def test_rmdir_symlink_to_directory_is_enotdir(fsroot):
    os.mkdir(fsroot / "d")
    os.symlink("d", fsroot / "l")
    with pytest.raises(OSError) as exc:
        os.rmdir(fsroot / "l")
    assert exc.value.errno == errno.ENOTDIR
    assert os.path.isdir(fsroot / "d")


@pytest.mark.core
def test_unlink_directory_is_eisdir(fsroot):
    # POSIX allows EPERM; Linux says EISDIR.
    os.mkdir(fsroot / "d")
    with pytest.raises(OSError) as exc:
        os.unlink(fsroot / "d")
    assert exc.value.errno == errno.EISDIR
    assert os.path.isdir(fsroot / "d")


@pytest.mark.core
def test_rmdir_dot_is_einval(fsroot):
    os.mkdir(fsroot / "d")
    with pytest.raises(OSError) as exc:
        os.rmdir(os.path.join(fsroot, "d", "."))
    assert exc.value.errno == errno.EINVAL
    assert os.path.isdir(fsroot / "d")


def test_rmdir_dotdot_is_enotempty(fsroot):
    os.mkdir(fsroot / "d")
    with pytest.raises(OSError) as exc:
        os.rmdir(os.path.join(fsroot, "d", ".."))
    assert exc.value.errno == errno.ENOTEMPTY


@pytest.mark.core
def test_directory_nlink_is_two_plus_subdirectories(fsroot):
    os.mkdir(fsroot / "d")
    assert os.stat(fsroot / "d").st_nlink == 2
    for i in range(3):
        os.mkdir(fsroot / "d" / f"sub{i}")
    # Files and symlinks have no ".." pointing back, so they do not count.
    touch(fsroot / "d" / "file")
    os.symlink("sub0", fsroot / "d" / "link")
    assert os.stat(fsroot / "d").st_nlink == 5
    os.rmdir(fsroot / "d" / "sub1")
    assert os.stat(fsroot / "d").st_nlink == 4
    assert os.stat(fsroot / "d" / "sub0").st_nlink == 2


@pytest.mark.core
def test_dot_and_dotdot_resolve(fsroot):
    os.makedirs(fsroot / "a" / "b")
    assert os.stat(os.path.join(fsroot, "a", "b", "..")).st_ino == os.stat(fsroot / "a").st_ino
    assert os.stat(os.path.join(fsroot, "a", ".")).st_ino == os.stat(fsroot / "a").st_ino
    assert os.stat(os.path.join(fsroot, "a", "..")).st_ino == os.stat(fsroot).st_ino


def test_create_in_removed_directory_is_enoent(fsroot):
    os.mkdir(fsroot / "d")
    fd = os.open(fsroot / "d", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.rmdir(fsroot / "d")
        with pytest.raises(OSError) as exc:
            os.open("f", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd)
        assert exc.value.errno == errno.ENOENT
        with pytest.raises(OSError) as exc:
            os.mkdir("sub", dir_fd=fd)
        assert exc.value.errno == errno.ENOENT
        assert os.listdir(fd) == []
        assert os.fstat(fd).st_nlink == 0
    finally:
        os.close(fd)


def test_directory_mtime_changes_on_create_and_unlink(fsroot):
    os.mkdir(fsroot / "d")
    old = 1_000_000_000_000_000_000
    os.utime(fsroot / "d", ns=(old, old))
    touch(fsroot / "d" / "f")
    st = os.stat(fsroot / "d")
    assert st.st_mtime_ns > old
    os.utime(fsroot / "d", ns=(old, old))
    os.unlink(fsroot / "d" / "f")
    assert os.stat(fsroot / "d").st_mtime_ns > old


# readdir


@pytest.mark.core
def test_listing_shows_what_was_created(fsroot):
    names = {"a", "b.txt", "c d", "sub"}
    for name in names - {"sub"}:
        touch(fsroot / name)
    os.mkdir(fsroot / "sub")
    assert sorted(os.listdir(fsroot)) == sorted(names)
    os.unlink(fsroot / "a")
    assert sorted(os.listdir(fsroot)) == sorted(names - {"a"})


def test_listing_many_entries_sees_each_once(fsroot):
    names = [f"entry-{i:05d}-{'x' * (i % 40)}" for i in range(2000)]
    for name in names:
        os.close(os.open(fsroot / name, os.O_CREAT | os.O_WRONLY, 0o644))
    listed = os.listdir(fsroot)
    assert len(listed) == len(names)
    assert sorted(listed) == sorted(names)
    with os.scandir(fsroot) as it:
        scanned = [entry.name for entry in it]
    assert sorted(scanned) == sorted(names)


def test_listing_while_unlinking_repeats_nothing(fsroot):
    names = {f"f{i:04d}" for i in range(600)}
    for name in names:
        touch(fsroot / name)
    seen = []
    # Removing each entry as it comes back shifts everything after it; a listing
    # that restarts or re-reads by position would return some names twice.
    with os.scandir(fsroot) as it:
        for entry in it:
            seen.append(entry.name)
            os.unlink(entry.path)
    assert len(seen) == len(set(seen))
    assert set(seen) == names
    assert os.listdir(fsroot) == []


def test_listing_while_creating_repeats_nothing(fsroot):
    old = {f"old{i:04d}" for i in range(300)}
    for name in old:
        touch(fsroot / name)
    seen = []
    with os.scandir(fsroot) as it:
        for i, entry in enumerate(it):
            seen.append(entry.name)
            if i < 300:
                touch(fsroot / f"new{i:04d}")
    assert len(seen) == len(set(seen))
    # New names may or may not show up; every old one must, exactly once.
    assert old <= set(seen)


@pytest.mark.core
def test_scandir_types(fsroot):
    touch(fsroot / "file")
    os.mkdir(fsroot / "dir")
    os.symlink("file", fsroot / "link")
    os.symlink("dir", fsroot / "dirlink")
    os.symlink("nowhere", fsroot / "dangling")
    with os.scandir(fsroot) as it:
        entries = {e.name: e for e in it}
    assert set(entries) == {"file", "dir", "link", "dirlink", "dangling"}
    kinds = {
        name: (
            e.is_file(follow_symlinks=False),
            e.is_dir(follow_symlinks=False),
            e.is_symlink(),
        )
        for name, e in entries.items()
    }
    assert kinds == {
        "file": (True, False, False),
        "dir": (False, True, False),
        "link": (False, False, True),
        "dirlink": (False, False, True),
        "dangling": (False, False, True),
    }
    assert entries["link"].is_file() and entries["dirlink"].is_dir()
    assert not entries["dangling"].is_file() and not entries["dangling"].is_dir()


def test_scandir_special_types(fsroot):
    os.mkfifo(fsroot / "fifo")
    os.mknod(fsroot / "chr", 0o600 | 0o020000, os.makedev(1, 3))
    with os.scandir(fsroot) as it:
        entries = {e.name: e for e in it}
    for name in ["fifo", "chr"]:
        e = entries[name]
        assert not e.is_file() and not e.is_dir() and not e.is_symlink()


def test_scandir_inode_matches_stat(fsroot):
    touch(fsroot / "f")
    os.mkdir(fsroot / "d")
    os.symlink("f", fsroot / "l")
    with os.scandir(fsroot) as it:
        for entry in it:
            assert entry.inode() == os.lstat(entry.path).st_ino, entry.name


@pytest.mark.core
def test_listing_empty_directory(fsroot):
    os.mkdir(fsroot / "d")
    assert os.listdir(fsroot / "d") == []
    with os.scandir(fsroot / "d") as it:
        assert list(it) == []


def test_listing_a_file_is_enotdir(fsroot):
    touch(fsroot / "f")
    with pytest.raises(OSError) as exc:
        os.listdir(fsroot / "f")
    assert exc.value.errno == errno.ENOTDIR


def test_rewinding_a_directory_listing(fsroot):
    for i in range(50):
        touch(fsroot / f"f{i}")
    fd = os.open(fsroot, os.O_RDONLY | os.O_DIRECTORY)
    try:
        first = sorted(os.listdir(fd))
        # os.listdir(fd) rewinds the descriptor itself before reading.
        second = sorted(os.listdir(fd))
    finally:
        os.close(fd)
    assert first == second == sorted(f"f{i}" for i in range(50))
