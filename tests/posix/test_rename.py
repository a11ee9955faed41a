"""rename(2) and renameat2(2) with RENAME_NOREPLACE / RENAME_EXCHANGE."""

from __future__ import annotations

import errno
import os

import pytest

from tests.posix.files import read_file, write_file
from tests.posix.libc import RENAME_EXCHANGE, RENAME_NOREPLACE, renameat2, wait_clock_past

LONG_AGO = 1_000_000_000_000_000_000  # 2001-09-09, in ns


def assert_missing(path):
    with pytest.raises(OSError) as exc:
        os.lstat(path)
    assert exc.value.errno == errno.ENOENT


@pytest.mark.core
def test_rename_file(fsroot):
    write_file(fsroot / "a", b"data")
    ino = os.stat(fsroot / "a").st_ino
    os.rename(fsroot / "a", fsroot / "b")
    assert_missing(fsroot / "a")
    assert os.stat(fsroot / "b").st_ino == ino
    assert read_file(fsroot / "b") == b"data"
    assert os.listdir(fsroot) == ["b"]


@pytest.mark.core
def test_rename_file_over_file_replaces_it(fsroot):
    write_file(fsroot / "src", b"new")
    write_file(fsroot / "dst", b"old contents")
    src_ino = os.stat(fsroot / "src").st_ino
    os.rename(fsroot / "src", fsroot / "dst")
    st = os.stat(fsroot / "dst")
    assert st.st_ino == src_ino
    assert st.st_nlink == 1
    assert read_file(fsroot / "dst") == b"new"
    assert os.listdir(fsroot) == ["dst"]


@pytest.mark.core
def test_replaced_file_lives_on_while_open(fsroot):
    write_file(fsroot / "src", b"new")
    write_file(fsroot / "dst", b"old")
    fd = os.open(fsroot / "dst", os.O_RDWR)
    try:
        os.rename(fsroot / "src", fsroot / "dst")
        assert os.fstat(fd).st_nlink == 0
        assert os.pread(fd, 10, 0) == b"old"
        os.pwrite(fd, b"OLD", 0)
        assert os.pread(fd, 10, 0) == b"OLD"
    finally:
        os.close(fd)
    assert read_file(fsroot / "dst") == b"new"


def test_rename_over_a_hard_link_of_another_file_drops_one_link(fsroot):
    write_file(fsroot / "other", b"other")
    os.link(fsroot / "other", fsroot / "dst")
    write_file(fsroot / "src", b"src")
    os.rename(fsroot / "src", fsroot / "dst")
    assert os.stat(fsroot / "other").st_nlink == 1
    assert read_file(fsroot / "other") == b"other"
    assert read_file(fsroot / "dst") == b"src"


@pytest.mark.core
def test_rename_across_directories(fsroot):
    os.mkdir(fsroot / "a")
    os.mkdir(fsroot / "b")
    write_file(fsroot / "a" / "f", b"moving")
    os.rename(fsroot / "a" / "f", fsroot / "b" / "g")
    assert os.listdir(fsroot / "a") == []
    assert os.listdir(fsroot / "b") == ["g"]
    assert read_file(fsroot / "b" / "g") == b"moving"


@pytest.mark.core
def test_rename_directory_with_contents(fsroot):
    os.makedirs(fsroot / "d" / "sub")
    write_file(fsroot / "d" / "sub" / "f", b"inside")
    os.rename(fsroot / "d", fsroot / "e")
    assert_missing(fsroot / "d")
    assert read_file(fsroot / "e" / "sub" / "f") == b"inside"


@pytest.mark.core
def test_rename_directory_across_parents_fixes_dotdot_and_nlink(fsroot):
    os.makedirs(fsroot / "p1" / "d")
    os.mkdir(fsroot / "p2")
    os.rename(fsroot / "p1" / "d", fsroot / "p2" / "d")
    assert os.stat(fsroot / "p1").st_nlink == 2
    assert os.stat(fsroot / "p2").st_nlink == 3
    dotdot = os.stat(os.path.join(fsroot, "p2", "d", ".."))
    assert dotdot.st_ino == os.stat(fsroot / "p2").st_ino


@pytest.mark.core
def test_rename_directory_over_empty_directory(fsroot):
    os.mkdir(fsroot / "src")
    write_file(fsroot / "src" / "f", b"x")
    os.mkdir(fsroot / "dst")
    ino = os.stat(fsroot / "src").st_ino
    os.rename(fsroot / "src", fsroot / "dst")
    assert os.stat(fsroot / "dst").st_ino == ino
    assert os.listdir(fsroot / "dst") == ["f"]
    assert os.listdir(fsroot) == ["dst"]
    assert os.stat(fsroot).st_nlink == 3


@pytest.mark.core
def test_rename_directory_over_non_empty_directory_is_enotempty(fsroot):
    os.mkdir(fsroot / "src")
    os.mkdir(fsroot / "dst")
    write_file(fsroot / "dst" / "f")
    with pytest.raises(OSError) as exc:
        os.rename(fsroot / "src", fsroot / "dst")
    # POSIX allows EEXIST too; Linux gives ENOTEMPTY.
    assert exc.value.errno == errno.ENOTEMPTY
    assert os.listdir(fsroot / "dst") == ["f"]


@pytest.mark.core
def test_rename_directory_over_file_is_enotdir(fsroot):
    os.mkdir(fsroot / "d")
    write_file(fsroot / "f", b"keep")
    with pytest.raises(OSError) as exc:
        os.rename(fsroot / "d", fsroot / "f")
    assert exc.value.errno == errno.ENOTDIR
    assert read_file(fsroot / "f") == b"keep"


@pytest.mark.core
def test_rename_file_over_directory_is_eisdir(fsroot):
    os.mkdir(fsroot / "d")
    write_file(fsroot / "f")
    with pytest.raises(OSError) as exc:
        os.rename(fsroot / "f", fsroot / "d")
    assert exc.value.errno == errno.EISDIR
    assert os.path.isdir(fsroot / "d")


@pytest.mark.parametrize("depth", [1, 3])
def test_rename_directory_under_itself_is_einval(fsroot, depth):
    path = fsroot / "d"
    for i in range(depth):
        path = path / f"s{i}"
    os.makedirs(path)
    with pytest.raises(OSError) as exc:
        os.rename(fsroot / "d", path / "moved")
    assert exc.value.errno == errno.EINVAL
    assert os.path.isdir(path)


@pytest.mark.core
def test_rename_missing_source_is_enoent(fsroot):
    with pytest.raises(OSError) as exc:
        os.rename(fsroot / "missing", fsroot / "x")
    assert exc.value.errno == errno.ENOENT


def test_rename_into_missing_directory_is_enoent(fsroot):
    write_file(fsroot / "f")
    with pytest.raises(OSError) as exc:
        os.rename(fsroot / "f", fsroot / "nodir" / "f")
    assert exc.value.errno == errno.ENOENT
    assert os.path.exists(fsroot / "f")


def test_rename_file_with_trailing_slash_is_enotdir(fsroot):
    write_file(fsroot / "f")
    with pytest.raises(OSError) as exc:
        os.rename(str(fsroot / "f") + "/", fsroot / "g")
    assert exc.value.errno == errno.ENOTDIR


def test_rename_dot_is_ebusy(fsroot):
    os.mkdir(fsroot / "d")
    with pytest.raises(OSError) as exc:
        os.rename(os.path.join(fsroot, "d", "."), fsroot / "e")
    assert exc.value.errno == errno.EBUSY


@pytest.mark.core
def test_rename_to_itself_is_a_no_op(fsroot):
    write_file(fsroot / "f", b"same")
    ino = os.stat(fsroot / "f").st_ino
    os.rename(fsroot / "f", fsroot / "f")
    assert os.stat(fsroot / "f").st_ino == ino
    assert read_file(fsroot / "f") == b"same"
    os.mkdir(fsroot / "d")
    os.rename(fsroot / "d", fsroot / "d")
    assert sorted(os.listdir(fsroot)) == ["d", "f"]


def test_rename_between_hard_links_of_one_file_is_a_no_op(fsroot):
    # POSIX: when both names are links to the same file, rename does nothing at all.
    write_file(fsroot / "a", b"x")
    os.link(fsroot / "a", fsroot / "b")
    os.rename(fsroot / "a", fsroot / "b")
    assert sorted(os.listdir(fsroot)) == ["a", "b"]
    assert os.stat(fsroot / "a").st_nlink == 2


def test_rename_symlink_moves_the_link_not_the_target(fsroot):
    write_file(fsroot / "target", b"t")
    os.symlink("target", fsroot / "l")
    os.rename(fsroot / "l", fsroot / "m")
    assert os.readlink(fsroot / "m") == "target"
    assert read_file(fsroot / "target") == b"t"
    assert sorted(os.listdir(fsroot)) == ["m", "target"]


def test_rename_updates_parent_times(fsroot):
    os.mkdir(fsroot / "a")
    os.mkdir(fsroot / "b")
    write_file(fsroot / "a" / "f")
    for d in ("a", "b"):
        os.utime(fsroot / d, ns=(LONG_AGO, LONG_AGO))
    ctimes = {d: os.stat(fsroot / d).st_ctime_ns for d in ("a", "b")}
    wait_clock_past(max(ctimes.values()))
    os.rename(fsroot / "a" / "f", fsroot / "b" / "f")
    for d in ("a", "b"):
        st = os.stat(fsroot / d)
        assert st.st_mtime_ns > LONG_AGO, d
        assert st.st_ctime_ns > ctimes[d], d


def test_rename_within_a_directory_updates_its_times(fsroot):
    write_file(fsroot / "f")
    os.utime(fsroot, ns=(LONG_AGO, LONG_AGO))
    ctime = os.stat(fsroot).st_ctime_ns
    wait_clock_past(ctime)
    os.rename(fsroot / "f", fsroot / "g")
    st = os.stat(fsroot)
    assert st.st_mtime_ns > LONG_AGO
    assert st.st_ctime_ns > ctime


# renameat2


@pytest.mark.core
def test_rename_noreplace_on_existing_target_is_eexist(fsroot):
    write_file(fsroot / "a", b"a")
    write_file(fsroot / "b", b"b")
    with pytest.raises(OSError) as exc:
        renameat2(fsroot / "a", fsroot / "b", RENAME_NOREPLACE)
    assert exc.value.errno == errno.EEXIST
    assert read_file(fsroot / "a") == b"a"
    assert read_file(fsroot / "b") == b"b"


def test_rename_noreplace_on_existing_directory_is_eexist(fsroot):
    os.mkdir(fsroot / "a")
    os.mkdir(fsroot / "b")
    with pytest.raises(OSError) as exc:
        renameat2(fsroot / "a", fsroot / "b", RENAME_NOREPLACE)
    assert exc.value.errno == errno.EEXIST


def test_rename_noreplace_on_dangling_symlink_target_is_eexist(fsroot):
    write_file(fsroot / "a")
    os.symlink("nowhere", fsroot / "b")
    with pytest.raises(OSError) as exc:
        renameat2(fsroot / "a", fsroot / "b", RENAME_NOREPLACE)
    assert exc.value.errno == errno.EEXIST


def test_rename_noreplace_to_free_name_works(fsroot):
    write_file(fsroot / "a", b"a")
    renameat2(fsroot / "a", fsroot / "b", RENAME_NOREPLACE)
    assert os.listdir(fsroot) == ["b"]
    assert read_file(fsroot / "b") == b"a"


@pytest.mark.core
def test_rename_exchange_swaps_two_files(fsroot):
    write_file(fsroot / "a", b"aaa")
    write_file(fsroot / "b", b"b")
    ino_a, ino_b = os.stat(fsroot / "a").st_ino, os.stat(fsroot / "b").st_ino
    renameat2(fsroot / "a", fsroot / "b", RENAME_EXCHANGE)
    assert read_file(fsroot / "a") == b"b"
    assert read_file(fsroot / "b") == b"aaa"
    assert os.stat(fsroot / "a").st_ino == ino_b
    assert os.stat(fsroot / "b").st_ino == ino_a


@pytest.mark.core
def test_rename_exchange_file_with_directory_across_parents(fsroot):
    os.mkdir(fsroot / "p")
    os.mkdir(fsroot / "q")
    write_file(fsroot / "p" / "f", b"file")
    os.mkdir(fsroot / "q" / "d")
    write_file(fsroot / "q" / "d" / "inner", b"inner")
    renameat2(fsroot / "p" / "f", fsroot / "q" / "d", RENAME_EXCHANGE)
    assert os.path.isdir(fsroot / "p" / "f")
    assert read_file(fsroot / "p" / "f" / "inner") == b"inner"
    assert read_file(fsroot / "q" / "d") == b"file"
    # The directory changed parent: link counts and ".." follow it.
    assert os.stat(fsroot / "p").st_nlink == 3
    assert os.stat(fsroot / "q").st_nlink == 2
    dotdot = os.stat(os.path.join(fsroot, "p", "f", ".."))
    assert dotdot.st_ino == os.stat(fsroot / "p").st_ino


def test_rename_exchange_two_directories(fsroot):
    os.mkdir(fsroot / "a")
    os.mkdir(fsroot / "b")
    write_file(fsroot / "a" / "in-a")
    write_file(fsroot / "b" / "in-b")
    renameat2(fsroot / "a", fsroot / "b", RENAME_EXCHANGE)
    assert os.listdir(fsroot / "a") == ["in-b"]
    assert os.listdir(fsroot / "b") == ["in-a"]


def test_rename_exchange_with_missing_target_is_enoent(fsroot):
    write_file(fsroot / "a")
    with pytest.raises(OSError) as exc:
        renameat2(fsroot / "a", fsroot / "b", RENAME_EXCHANGE)
    assert exc.value.errno == errno.ENOENT
    assert os.listdir(fsroot) == ["a"]


def test_rename_exchange_and_noreplace_together_is_einval(fsroot):
    write_file(fsroot / "a")
    write_file(fsroot / "b")
    with pytest.raises(OSError) as exc:
        renameat2(fsroot / "a", fsroot / "b", RENAME_EXCHANGE | RENAME_NOREPLACE)
    assert exc.value.errno == errno.EINVAL
