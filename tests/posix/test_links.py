"""link/unlink/symlink/readlink, and files that live on after their last name."""

from __future__ import annotations

import errno
import os

import pytest

from tests.posix.files import read_file, write_file
from tests.posix.libc import wait_clock_past

PATH_MAX = 4096


@pytest.mark.core
def test_hard_link_counts(fsroot):
    write_file(fsroot / "a", b"shared")
    assert os.stat(fsroot / "a").st_nlink == 1
    os.link(fsroot / "a", fsroot / "b")
    os.mkdir(fsroot / "d")
    os.link(fsroot / "a", fsroot / "d" / "c")
    for name in ["a", "b", "d/c"]:
        st = os.stat(fsroot / name)
        assert st.st_nlink == 3
        assert st.st_ino == os.stat(fsroot / "a").st_ino
    os.unlink(fsroot / "b")
    assert os.stat(fsroot / "a").st_nlink == 2


@pytest.mark.core
def test_unlink_keeps_the_other_links_data(fsroot):
    write_file(fsroot / "a", b"survives")
    os.link(fsroot / "a", fsroot / "b")
    os.unlink(fsroot / "a")
    assert read_file(fsroot / "b") == b"survives"
    assert os.stat(fsroot / "b").st_nlink == 1
    assert os.listdir(fsroot) == ["b"]


def test_write_through_one_link_read_through_another(fsroot):
    write_file(fsroot / "a", b"v1")
    os.link(fsroot / "a", fsroot / "b")
    write_file(fsroot / "b", b"version two")
    assert read_file(fsroot / "a") == b"version two"
    assert os.stat(fsroot / "a").st_size == 11


def test_link_changes_ctime(fsroot):
    write_file(fsroot / "a")
    ctime = os.stat(fsroot / "a").st_ctime_ns
    wait_clock_past(ctime)
    os.link(fsroot / "a", fsroot / "b")
    after_link = os.stat(fsroot / "a").st_ctime_ns
    assert after_link > ctime
    wait_clock_past(after_link)
    os.unlink(fsroot / "b")
    assert os.stat(fsroot / "a").st_ctime_ns > after_link


@pytest.mark.core
def test_open_unlinked_file_keeps_working(fsroot):
    write_file(fsroot / "f", b"before")
    fd = os.open(fsroot / "f", os.O_RDWR)
    try:
        os.unlink(fsroot / "f")
        assert os.listdir(fsroot) == []
        st = os.fstat(fd)
        assert st.st_nlink == 0
        assert os.pread(fd, 100, 0) == b"before"
        os.pwrite(fd, b" and after", 6)
        os.ftruncate(fd, 12)
        assert os.pread(fd, 100, 0) == b"before and a"
        assert os.fstat(fd).st_size == 12
        os.fsync(fd)
    finally:
        os.close(fd)
    with pytest.raises(OSError) as exc:
        os.stat(fsroot / "f")
    assert exc.value.errno == errno.ENOENT


@pytest.mark.core
def test_name_reused_while_unlinked_file_is_open(fsroot):
    write_file(fsroot / "f", b"old")
    fd = os.open(fsroot / "f", os.O_RDWR)
    try:
        os.unlink(fsroot / "f")
        write_file(fsroot / "f", b"new file")
        assert os.fstat(fd).st_ino != os.stat(fsroot / "f").st_ino
        os.pwrite(fd, b"OLD", 0)
        assert os.pread(fd, 10, 0) == b"OLD"
    finally:
        os.close(fd)
    assert read_file(fsroot / "f") == b"new file"


def test_unlinked_file_stays_readable_from_several_descriptors(fsroot):
    write_file(fsroot / "f", b"x" * 100_000)
    fds = [os.open(fsroot / "f", os.O_RDONLY) for _ in range(3)]
    try:
        os.unlink(fsroot / "f")
        os.close(fds.pop())
        for fd in fds:
            assert os.pread(fd, 100_000, 0) == b"x" * 100_000
    finally:
        for fd in fds:
            os.close(fd)


@pytest.mark.core
def test_link_to_a_directory_is_eperm(fsroot):
    os.mkdir(fsroot / "d")
    with pytest.raises(OSError) as exc:
        os.link(fsroot / "d", fsroot / "e")
    assert exc.value.errno == errno.EPERM


@pytest.mark.core
def test_link_onto_existing_name_is_eexist(fsroot):
    write_file(fsroot / "a")
    write_file(fsroot / "b", b"b")
    with pytest.raises(OSError) as exc:
        os.link(fsroot / "a", fsroot / "b")
    assert exc.value.errno == errno.EEXIST
    assert read_file(fsroot / "b") == b"b"


def test_link_missing_source_is_enoent(fsroot):
    with pytest.raises(OSError) as exc:
        os.link(fsroot / "missing", fsroot / "b")
    assert exc.value.errno == errno.ENOENT


def test_link_to_a_symlink_links_the_symlink_itself(fsroot):
    write_file(fsroot / "target")
    os.symlink("target", fsroot / "l")
    os.link(fsroot / "l", fsroot / "l2", follow_symlinks=False)
    assert os.path.islink(fsroot / "l2")
    assert os.readlink(fsroot / "l2") == "target"
    assert os.lstat(fsroot / "l").st_nlink == 2
    assert os.stat(fsroot / "target").st_nlink == 1


@pytest.mark.core
def test_unlink_missing_is_enoent(fsroot):
    with pytest.raises(OSError) as exc:
        os.unlink(fsroot / "missing")
    assert exc.value.errno == errno.ENOENT


# symlinks


@pytest.mark.core
def test_symlink_and_readlink(fsroot):
    write_file(fsroot / "target", b"through the link")
    os.symlink("target", fsroot / "l")
    assert os.readlink(fsroot / "l") == "target"
    assert read_file(fsroot / "l") == b"through the link"


@pytest.mark.core
def test_lstat_versus_stat(fsroot):
    write_file(fsroot / "target", b"12345")
    os.symlink("target", fsroot / "l")
    lst = os.lstat(fsroot / "l")
    st = os.stat(fsroot / "l")
    assert (lst.st_mode & 0o170000) == 0o120000
    assert (st.st_mode & 0o170000) == 0o100000
    assert st.st_ino == os.stat(fsroot / "target").st_ino
    assert lst.st_ino != st.st_ino
    # A symlink's size is the length of its target; its permissions are all set.
    assert lst.st_size == len("target")
    assert st.st_size == 5
    assert lst.st_mode & 0o777 == 0o777


@pytest.mark.core
def test_dangling_symlink(fsroot):
    os.symlink("does/not/exist", fsroot / "l")
    assert os.readlink(fsroot / "l") == "does/not/exist"
    assert os.lstat(fsroot / "l").st_size == len("does/not/exist")
    with pytest.raises(OSError) as exc:
        os.stat(fsroot / "l")
    assert exc.value.errno == errno.ENOENT


def test_absolute_and_relative_symlinks(fsroot):
    os.makedirs(fsroot / "a" / "b")
    write_file(fsroot / "a" / "b" / "f", b"deep")
    os.symlink(str(fsroot / "a" / "b" / "f"), fsroot / "abs")
    os.symlink("../a/b/f", fsroot / "a" / "rel")
    os.symlink("a/b", fsroot / "dirlink")
    assert read_file(fsroot / "abs") == b"deep"
    assert read_file(fsroot / "a" / "rel") == b"deep"
    assert read_file(fsroot / "dirlink" / "f") == b"deep"
    assert os.listdir(fsroot / "dirlink") == ["f"]


@pytest.mark.parametrize("length", [1, 255, 256, 1024, PATH_MAX - 1])
def test_long_symlink_targets(fsroot, length):
    target = ("t/" * length)[:length]
    os.symlink(target, fsroot / "l")
    assert os.readlink(fsroot / "l") == target
    assert os.lstat(fsroot / "l").st_size == length


def test_symlink_target_of_path_max_is_enametoolong(fsroot):
    with pytest.raises(OSError) as exc:
        os.symlink("t" * PATH_MAX, fsroot / "l")
    assert exc.value.errno == errno.ENAMETOOLONG


def test_symlink_target_with_unusual_bytes(fsroot):
    target = b"sp ace/\xff\xfe/new\nline/..//x"
    link = os.path.join(os.fsencode(fsroot), b"l")
    os.symlink(target, link)
    assert os.readlink(link) == target


def test_empty_symlink_target_is_enoent(fsroot):
    with pytest.raises(OSError) as exc:
        os.symlink("", fsroot / "l")
    assert exc.value.errno == errno.ENOENT


@pytest.mark.core
def test_symlink_onto_existing_name_is_eexist(fsroot):
    write_file(fsroot / "f", b"keep")
    with pytest.raises(OSError) as exc:
        os.symlink("anything", fsroot / "f")
    assert exc.value.errno == errno.EEXIST
    assert read_file(fsroot / "f") == b"keep"


@pytest.mark.core
def test_readlink_of_non_symlink_is_einval(fsroot):
    write_file(fsroot / "f")
    os.mkdir(fsroot / "d")
    for name in ["f", "d"]:
        with pytest.raises(OSError) as exc:
            os.readlink(fsroot / name)
        assert exc.value.errno == errno.EINVAL


def test_symlink_loop_is_eloop(fsroot):
    os.symlink("b", fsroot / "a")
    os.symlink("a", fsroot / "b")
    with pytest.raises(OSError) as exc:
        os.stat(fsroot / "a")
    assert exc.value.errno == errno.ELOOP
    os.symlink("self", fsroot / "self")
    with pytest.raises(OSError) as exc:
        os.open(fsroot / "self", os.O_RDONLY)
    assert exc.value.errno == errno.ELOOP


@pytest.mark.core
def test_unlink_symlink_leaves_target(fsroot):
    write_file(fsroot / "target", b"t")
    os.mkdir(fsroot / "d")
    os.symlink("target", fsroot / "l")
    os.symlink("d", fsroot / "dl")
    os.unlink(fsroot / "l")
    os.unlink(fsroot / "dl")
    assert sorted(os.listdir(fsroot)) == ["d", "target"]
    assert read_file(fsroot / "target") == b"t"


def test_write_through_symlink_changes_target(fsroot):
    write_file(fsroot / "target", b"old")
    os.symlink("target", fsroot / "l")
    write_file(fsroot / "l", b"new")
    assert read_file(fsroot / "target") == b"new"
    assert os.path.islink(fsroot / "l")
