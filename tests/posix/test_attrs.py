"""stat/chmod/chown/utimensat: modes, owners, timestamps, inode numbers, link counts."""

from __future__ import annotations

import errno
import os
import stat
import time

import pytest

from tests.posix.files import write_file
from tests.posix.libc import NOW, OMIT, utimensat, wait_clock_past

LONG_AGO = 1_000_000_000_000_000_000  # 2001-09-09, in ns
SECOND = 1_000_000_000


@pytest.mark.core
def test_new_file_attributes(fsroot):
    before = time.time_ns()
    write_file(fsroot / "f", b"abc")
    st = os.stat(fsroot / "f")
    assert stat.S_ISREG(st.st_mode)
    assert st.st_size == 3
    assert st.st_nlink == 1
    assert st.st_uid == os.getuid()
    assert st.st_gid == os.getgid()
    assert st.st_blksize > 0
    # Within a generous window: the stamps come from the kernel or the daemon.
    for t in (st.st_mtime_ns, st.st_ctime_ns, st.st_atime_ns):
        assert before - 2 * SECOND <= t <= time.time_ns() + 2 * SECOND


@pytest.mark.core
def test_new_directory_attributes(fsroot):
    os.mkdir(fsroot / "d")
    st = os.stat(fsroot / "d")
    assert stat.S_ISDIR(st.st_mode)
    assert st.st_nlink == 2
    assert st.st_uid == os.getuid()


@pytest.mark.parametrize(
    "mode", [0o000, 0o400, 0o644, 0o755, 0o777, 0o4755, 0o2755, 0o1755, 0o7777]
)
def test_chmod_file(fsroot, mode):
    write_file(fsroot / "f")
    os.chmod(fsroot / "f", mode)
    st = os.stat(fsroot / "f")
    assert stat.S_IMODE(st.st_mode) == mode
    assert stat.S_ISREG(st.st_mode)


@pytest.mark.parametrize("mode", [0o700, 0o1777, 0o2775, 0o555])
def test_chmod_directory(fsroot, mode):
    os.mkdir(fsroot / "d")
    os.chmod(fsroot / "d", mode)
    st = os.stat(fsroot / "d")
    assert stat.S_IMODE(st.st_mode) == mode
    assert stat.S_ISDIR(st.st_mode)


@pytest.mark.core
def test_fchmod(fsroot):
    write_file(fsroot / "f")
    fd = os.open(fsroot / "f", os.O_RDONLY)
    try:
        os.fchmod(fd, 0o600)
        assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o600
    finally:
        os.close(fd)


def test_chmod_through_symlink_changes_target(fsroot):
    write_file(fsroot / "f")
    os.chmod(fsroot / "f", 0o644)
    os.symlink("f", fsroot / "l")
    os.chmod(fsroot / "l", 0o600)
    assert stat.S_IMODE(os.stat(fsroot / "f").st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(fsroot / "l").st_mode) == 0o777


def test_chmod_missing_is_enoent(fsroot):
    with pytest.raises(OSError) as exc:
        os.chmod(fsroot / "missing", 0o644)
    assert exc.value.errno == errno.ENOENT


def test_chmod_changes_ctime_not_mtime(fsroot):
    write_file(fsroot / "f")
    os.utime(fsroot / "f", ns=(LONG_AGO, LONG_AGO))
    ctime = os.stat(fsroot / "f").st_ctime_ns
    wait_clock_past(ctime)
    os.chmod(fsroot / "f", 0o600)
    st = os.stat(fsroot / "f")
    assert st.st_ctime_ns > ctime
    assert st.st_mtime_ns == LONG_AGO
    assert st.st_atime_ns == LONG_AGO


@pytest.mark.core
def test_chown_uid_and_gid(fsroot):
    write_file(fsroot / "f")
    os.chown(fsroot / "f", 1234, 5678)
    st = os.stat(fsroot / "f")
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    os.chown(fsroot / "f", -1, 42)
    st = os.stat(fsroot / "f")
    assert (st.st_uid, st.st_gid) == (1234, 42)
    os.chown(fsroot / "f", 99, -1)
    st = os.stat(fsroot / "f")
    assert (st.st_uid, st.st_gid) == (99, 42)


def test_chown_directory_and_large_ids(fsroot):
    os.mkdir(fsroot / "d")
    os.chown(fsroot / "d", 2**31 + 5, 2**32 - 2)
    st = os.stat(fsroot / "d")
    assert (st.st_uid, st.st_gid) == (2**31 + 5, 2**32 - 2)


def test_lchown_changes_the_link_not_the_target(fsroot):
    write_file(fsroot / "f")
    os.symlink("f", fsroot / "l")
    os.lchown(fsroot / "l", 777, 888)
    lst = os.lstat(fsroot / "l")
    assert (lst.st_uid, lst.st_gid) == (777, 888)
    st = os.stat(fsroot / "f")
    assert (st.st_uid, st.st_gid) == (0, 0)


def test_chown_changes_ctime(fsroot):
    write_file(fsroot / "f")
    ctime = os.stat(fsroot / "f").st_ctime_ns
    wait_clock_past(ctime)
    os.chown(fsroot / "f", 1, 1)
    assert os.stat(fsroot / "f").st_ctime_ns > ctime


def test_chown_by_root_clears_setuid_and_setgid_of_a_file(fsroot):
    # Linux clears both even for root (setgid only with group execute).
    write_file(fsroot / "f")
    os.chmod(fsroot / "f", 0o6755)
    os.chown(fsroot / "f", 1000, 1000)
    assert stat.S_IMODE(os.stat(fsroot / "f").st_mode) == 0o755


def test_chown_keeps_setgid_without_group_execute(fsroot):
    # Setgid without group execute means mandatory locking, not privilege: kept.
    write_file(fsroot / "f")
    os.chmod(fsroot / "f", 0o2644)
    os.chown(fsroot / "f", 1000, 1000)
    assert stat.S_IMODE(os.stat(fsroot / "f").st_mode) == 0o2644


def test_chown_keeps_setgid_of_a_directory(fsroot):
    os.mkdir(fsroot / "d")
    os.chmod(fsroot / "d", 0o2775)
    os.chown(fsroot / "d", 1000, 1000)
    assert stat.S_IMODE(os.stat(fsroot / "d").st_mode) == 0o2775


@pytest.mark.core
def test_utime_explicit_nanoseconds(fsroot):
    write_file(fsroot / "f")
    atime, mtime = 1_234_567_890_123_456_789, 1_111_111_111_987_654_321
    os.utime(fsroot / "f", ns=(atime, mtime))
    st = os.stat(fsroot / "f")
    assert st.st_atime_ns == atime
    assert st.st_mtime_ns == mtime


@pytest.mark.parametrize(
    "when",
    [0, SECOND - 1, -5 * 365 * 86400 * SECOND, 2**31 * SECOND + 5, 4_102_444_800 * SECOND],
    ids=["epoch", "just-under-a-second", "before-1970", "after-2038", "year-2100"],
)
def test_utime_extreme_times(fsroot, when):
    write_file(fsroot / "f")
    os.utime(fsroot / "f", ns=(when, when))
    st = os.stat(fsroot / "f")
    assert st.st_mtime_ns == when
    assert st.st_atime_ns == when


def test_utime_on_directory(fsroot):
    os.mkdir(fsroot / "d")
    os.utime(fsroot / "d", ns=(LONG_AGO + 1, LONG_AGO + 2))
    st = os.stat(fsroot / "d")
    assert (st.st_atime_ns, st.st_mtime_ns) == (LONG_AGO + 1, LONG_AGO + 2)


def test_utimensat_now(fsroot):
    write_file(fsroot / "f")
    os.utime(fsroot / "f", ns=(LONG_AGO, LONG_AGO))
    before = time.time_ns()
    utimensat(fsroot / "f", NOW, NOW)
    st = os.stat(fsroot / "f")
    for t in (st.st_atime_ns, st.st_mtime_ns):
        assert before - 2 * SECOND <= t <= time.time_ns() + 2 * SECOND


def test_utimensat_null_times_means_now(fsroot):
    write_file(fsroot / "f")
    os.utime(fsroot / "f", ns=(LONG_AGO, LONG_AGO))
    utimensat(fsroot / "f")
    st = os.stat(fsroot / "f")
    assert st.st_atime_ns > LONG_AGO and st.st_mtime_ns > LONG_AGO


@pytest.mark.core
def test_utimensat_omit_leaves_that_time_alone(fsroot):
    write_file(fsroot / "f")
    os.utime(fsroot / "f", ns=(LONG_AGO, LONG_AGO + 7))
    utimensat(fsroot / "f", OMIT, LONG_AGO + 99)
    st = os.stat(fsroot / "f")
    assert (st.st_atime_ns, st.st_mtime_ns) == (LONG_AGO, LONG_AGO + 99)
    utimensat(fsroot / "f", LONG_AGO + 5, OMIT)
    st = os.stat(fsroot / "f")
    assert (st.st_atime_ns, st.st_mtime_ns) == (LONG_AGO + 5, LONG_AGO + 99)


def test_utimensat_now_and_omit_mixed(fsroot):
    write_file(fsroot / "f")
    os.utime(fsroot / "f", ns=(LONG_AGO, LONG_AGO))
    utimensat(fsroot / "f", OMIT, NOW)
    st = os.stat(fsroot / "f")
    assert st.st_atime_ns == LONG_AGO
    assert st.st_mtime_ns > LONG_AGO


def test_utimensat_both_omitted_changes_nothing(fsroot):
    write_file(fsroot / "f")
    os.utime(fsroot / "f", ns=(LONG_AGO, LONG_AGO))
    utimensat(fsroot / "f", OMIT, OMIT)
    st = os.stat(fsroot / "f")
    assert (st.st_atime_ns, st.st_mtime_ns) == (LONG_AGO, LONG_AGO)


def test_utime_changes_ctime(fsroot):
    write_file(fsroot / "f")
    ctime = os.stat(fsroot / "f").st_ctime_ns
    wait_clock_past(ctime)
    os.utime(fsroot / "f", ns=(LONG_AGO, LONG_AGO))
    assert os.stat(fsroot / "f").st_ctime_ns > ctime


def test_utime_on_symlink_without_following(fsroot):
    write_file(fsroot / "f")
    os.utime(fsroot / "f", ns=(LONG_AGO, LONG_AGO))
    os.symlink("f", fsroot / "l")
    utimensat(fsroot / "l", LONG_AGO + 3, LONG_AGO + 4, follow_symlinks=False)
    lst = os.lstat(fsroot / "l")
    assert (lst.st_atime_ns, lst.st_mtime_ns) == (LONG_AGO + 3, LONG_AGO + 4)
    st = os.stat(fsroot / "f")
    assert (st.st_atime_ns, st.st_mtime_ns) == (LONG_AGO, LONG_AGO)


@pytest.mark.core
def test_write_updates_mtime_and_ctime(fsroot):
    write_file(fsroot / "f", b"x")
    os.utime(fsroot / "f", ns=(LONG_AGO, LONG_AGO))
    ctime = os.stat(fsroot / "f").st_ctime_ns
    wait_clock_past(ctime)
    fd = os.open(fsroot / "f", os.O_WRONLY)
    try:
        os.write(fd, b"y")
    finally:
        os.close(fd)
    st = os.stat(fsroot / "f")
    assert st.st_mtime_ns > LONG_AGO
    assert st.st_ctime_ns > ctime


def test_truncate_updates_mtime(fsroot):
    write_file(fsroot / "f", b"xyz")
    os.utime(fsroot / "f", ns=(LONG_AGO, LONG_AGO))
    os.truncate(fsroot / "f", 1)
    assert os.stat(fsroot / "f").st_mtime_ns > LONG_AGO


def test_o_trunc_updates_mtime(fsroot):
    write_file(fsroot / "f", b"xyz")
    os.utime(fsroot / "f", ns=(LONG_AGO, LONG_AGO))
    os.close(os.open(fsroot / "f", os.O_WRONLY | os.O_TRUNC))
    assert os.stat(fsroot / "f").st_mtime_ns > LONG_AGO


def test_read_does_not_change_mtime(fsroot):
    write_file(fsroot / "f", b"xyz")
    os.utime(fsroot / "f", ns=(LONG_AGO, LONG_AGO))
    with open(fsroot / "f", "rb") as f:
        assert f.read() == b"xyz"
    assert os.stat(fsroot / "f").st_mtime_ns == LONG_AGO


def test_mtime_after_explicit_utime_then_write_through_open_fd(fsroot):
    # A write cached before utime must not later overwrite the explicit stamp.
    fd = os.open(fsroot / "f", os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"data")
        os.fsync(fd)
        os.utime(fsroot / "f", ns=(LONG_AGO, LONG_AGO))
    finally:
        os.close(fd)
    assert os.stat(fsroot / "f").st_mtime_ns == LONG_AGO


@pytest.mark.core
def test_st_ino_is_stable_and_distinct(fsroot):
    write_file(fsroot / "a")
    write_file(fsroot / "b")
    os.mkdir(fsroot / "d")
    inos = {n: os.stat(fsroot / n).st_ino for n in ("a", "b", "d")}
    assert len(set(inos.values())) == 3
    for _ in range(3):
        for n, ino in inos.items():
            assert os.stat(fsroot / n).st_ino == ino
    with os.scandir(fsroot) as it:
        names = sorted(e.name for e in it)
    assert names == ["a", "b", "d"]
    assert {n: os.stat(fsroot / n).st_ino for n in names} == inos


@pytest.mark.core
def test_st_ino_survives_rename_and_chmod(fsroot):
    write_file(fsroot / "a")
    ino = os.stat(fsroot / "a").st_ino
    os.chmod(fsroot / "a", 0o600)
    os.rename(fsroot / "a", fsroot / "b")
    assert os.stat(fsroot / "b").st_ino == ino


def test_st_dev_is_the_same_across_the_tree(fsroot):
    os.makedirs(fsroot / "d" / "e")
    write_file(fsroot / "d" / "e" / "f")
    devs = {os.stat(p).st_dev for p in (fsroot, fsroot / "d", fsroot / "d" / "e" / "f")}
    assert len(devs) == 1


def test_fstat_matches_stat(fsroot):
    write_file(fsroot / "f", b"12345")
    fd = os.open(fsroot / "f", os.O_RDONLY)
    try:
        a, b = os.fstat(fd), os.stat(fsroot / "f")
    finally:
        os.close(fd)
    for field in ("st_ino", "st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_mtime_ns"):
        assert getattr(a, field) == getattr(b, field), field


@pytest.mark.core
def test_stat_missing_is_enoent(fsroot):
    with pytest.raises(OSError) as exc:
        os.stat(fsroot / "missing")
    assert exc.value.errno == errno.ENOENT
