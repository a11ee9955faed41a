"""Permission checks as seen by unprivileged users (the mount uses default_permissions)."""

from __future__ import annotations

import errno
import os
import signal
import stat

import pytest

from tests.posix.files import read_file
from tests.posix.libc import NOW, utimensat
from tests.posix.users import NOBODY, ChildFailed, as_user

ALICE = 1001
BOB = 1002
STAFF = 1234
LONG_AGO = 1_000_000_000_000_000_000


def write_file(path, data=b"", mode=0o644, owner=None):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    if owner is not None:
        os.chown(path, *owner)
    return path


def open_dir(fsroot, name="shared", mode=0o777, owner=(0, 0)):
    path = fsroot / name
    os.mkdir(path)
    os.chown(path, *owner)
    os.chmod(path, mode)
    return path


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def expect_errno(err, fn, *args, **kwargs):
    with pytest.raises(OSError) as exc:
        as_user(fn, *args, **kwargs)
    assert exc.value.errno == err


def user_write(path, data, offset=0):
    fd = os.open(path, os.O_WRONLY)
    try:
        return os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def user_create(path):
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    st = os.stat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


@pytest.fixture(autouse=True)
def reachable_by_users(fsroot):
    # A FUSE mount without allow_other refuses every other user outright; the
    # EACCES tests below would then pass for the wrong reason.
    assert as_user(os.listdir, fsroot) == []


# the helper itself


def test_helper_really_runs_as_the_user():
    assert as_user(os.getuid) == NOBODY
    assert as_user(os.getgid) == NOBODY
    assert as_user(os.getgroups) == []
    assert as_user(os.getgroups, uid=ALICE, gid=ALICE, groups=[STAFF]) == [STAFF]


def test_helper_reports_other_exceptions_and_gives_up_at_its_deadline():
    with pytest.raises(ChildFailed, match="ZeroDivisionError"):
        as_user(lambda: 1 / 0)
    with pytest.raises(TimeoutError):
        as_user(signal.pause, deadline=0.5)


# access(2)


def test_access_as_root(fsroot):
    write_file(fsroot / "rw", mode=0o644)
    write_file(fsroot / "none", mode=0o000)
    write_file(fsroot / "x", mode=0o100)
    open_dir(fsroot, "d", mode=0o000)
    assert os.access(fsroot / "rw", os.R_OK | os.W_OK)
    # Root bypasses read and write bits, but executes only what some class may execute.
    assert not os.access(fsroot / "rw", os.X_OK)
    assert os.access(fsroot / "none", os.R_OK | os.W_OK)
    assert not os.access(fsroot / "none", os.X_OK)
    assert os.access(fsroot / "x", os.X_OK)
    assert os.access(fsroot / "d", os.R_OK | os.W_OK | os.X_OK)
    assert os.access(fsroot / "rw", os.F_OK)
    assert not os.access(fsroot / "missing", os.F_OK)


def test_access_as_a_user(fsroot):
    write_file(fsroot / "public", mode=0o644)
    write_file(fsroot / "private", mode=0o600)
    write_file(fsroot / "tool", mode=0o755)
    write_file(fsroot / "group", mode=0o640, owner=(0, STAFF))

    def probe():
        return {
            "public": os.access(fsroot / "public", os.R_OK),
            "public-w": os.access(fsroot / "public", os.W_OK),
            "private": os.access(fsroot / "private", os.R_OK),
            "tool-x": os.access(fsroot / "tool", os.X_OK),
            "group": os.access(fsroot / "group", os.R_OK),
            "root-dir-w": os.access(fsroot, os.W_OK),
            "root-dir-x": os.access(fsroot, os.X_OK),
        }

    assert as_user(probe) == {
        "public": True,
        "public-w": False,
        "private": False,
        "tool-x": True,
        "group": False,
        "root-dir-w": False,
        "root-dir-x": True,
    }
    assert as_user(probe, uid=ALICE, gid=ALICE, groups=[STAFF])["group"] is True


# creating and removing in a directory the user may not write


@pytest.mark.parametrize(
    "op",
    [
        lambda d, f: os.open(d / "new", os.O_CREAT | os.O_WRONLY, 0o644),
        lambda d, f: os.mkdir(d / "new"),
        lambda d, f: os.symlink("x", d / "new"),
        lambda d, f: os.mkfifo(d / "new"),
        lambda d, f: os.link(f, d / "new"),
        lambda d, f: os.rename(f, d / "new"),
    ],
    ids=["create", "mkdir", "symlink", "mkfifo", "link", "rename-into"],
)
def test_creating_in_root_owned_0755_directory_is_eacces(fsroot, op):
    shared = open_dir(fsroot, "shared")
    theirs = write_file(shared / "mine", owner=(NOBODY, NOBODY))
    expect_errno(errno.EACCES, op, fsroot, theirs)
    assert sorted(os.listdir(fsroot)) == ["shared"]


def test_removing_from_root_owned_0755_directory_is_eacces(fsroot):
    write_file(fsroot / "f", owner=(NOBODY, NOBODY))
    os.mkdir(fsroot / "d")
    os.chown(fsroot / "d", NOBODY, NOBODY)
    expect_errno(errno.EACCES, os.unlink, fsroot / "f")
    expect_errno(errno.EACCES, os.rmdir, fsroot / "d")
    expect_errno(errno.EACCES, os.rename, fsroot / "f", fsroot / "g")
    assert sorted(os.listdir(fsroot)) == ["d", "f"]


def test_reading_a_0600_root_file_is_eacces(fsroot):
    write_file(fsroot / "secret", b"secret", mode=0o600)
    expect_errno(errno.EACCES, read_file, fsroot / "secret")


def test_writing_a_0644_root_file_is_eacces(fsroot):
    write_file(fsroot / "f", b"orig", mode=0o644)
    assert as_user(read_file, fsroot / "f") == b"orig"
    expect_errno(errno.EACCES, user_write, fsroot / "f", b"x")
    expect_errno(errno.EACCES, os.truncate, fsroot / "f", 0)
    assert read_file(fsroot / "f") == b"orig"


def test_owner_class_bits_apply_to_the_owner_even_if_others_may(fsroot):
    write_file(fsroot / "f", b"x", mode=0o077, owner=(ALICE, ALICE))
    expect_errno(errno.EACCES, read_file, fsroot / "f", uid=ALICE, gid=ALICE)
    assert as_user(read_file, fsroot / "f", uid=BOB, gid=BOB) == b"x"


def test_group_bits_apply_to_supplementary_group_members(fsroot):
    write_file(fsroot / "f", b"team", mode=0o640, owner=(0, STAFF))
    assert as_user(read_file, fsroot / "f", uid=ALICE, gid=ALICE, groups=[STAFF]) == b"team"
    assert as_user(read_file, fsroot / "f", uid=ALICE, gid=STAFF) == b"team"
    expect_errno(errno.EACCES, read_file, fsroot / "f", uid=ALICE, gid=ALICE)


def test_mode_0000_file_of_ones_own_is_eacces(fsroot):
    write_file(fsroot / "f", b"x", mode=0o000, owner=(NOBODY, NOBODY))
    expect_errno(errno.EACCES, read_file, fsroot / "f")
    assert read_file(fsroot / "f") == b"x"


def test_missing_search_permission_on_a_directory(fsroot):
    d = open_dir(fsroot, "d", mode=0o754)
    write_file(d / "f", b"x")
    # Read without execute: names are listable, but nothing under them is reachable.
    assert as_user(os.listdir, d) == ["f"]
    expect_errno(errno.EACCES, os.stat, d / "f")
    expect_errno(errno.EACCES, read_file, d / "f")


def test_search_without_read_permission_on_a_directory(fsroot):
    d = open_dir(fsroot, "d", mode=0o751)
    write_file(d / "f", b"x")
    expect_errno(errno.EACCES, os.listdir, d)
    assert as_user(read_file, d / "f") == b"x"


def test_missing_search_permission_higher_up_the_path(fsroot):
    open_dir(fsroot, "a", mode=0o700)
    os.makedirs(fsroot / "a" / "b")
    write_file(fsroot / "a" / "b" / "f", b"x")
    expect_errno(errno.EACCES, os.stat, fsroot / "a" / "b" / "f")


# ownership changes


def test_chmod_of_a_file_one_does_not_own_is_eperm(fsroot):
    write_file(fsroot / "f", mode=0o666)
    expect_errno(errno.EPERM, os.chmod, fsroot / "f", 0o777)
    assert mode_of(fsroot / "f") == 0o666


def test_chown_of_a_file_one_does_not_own_is_eperm(fsroot):
    write_file(fsroot / "f", mode=0o666)
    expect_errno(errno.EPERM, os.chown, fsroot / "f", NOBODY, NOBODY)
    st = os.stat(fsroot / "f")
    assert (st.st_uid, st.st_gid) == (0, 0)


def test_owner_may_not_give_a_file_away(fsroot):
    write_file(fsroot / "f", owner=(ALICE, ALICE))
    expect_errno(errno.EPERM, os.chown, fsroot / "f", BOB, -1, uid=ALICE, gid=ALICE)
    assert os.stat(fsroot / "f").st_uid == ALICE


def test_owner_may_change_group_only_to_a_group_of_theirs(fsroot):
    write_file(fsroot / "f", owner=(ALICE, ALICE))
    expect_errno(errno.EPERM, os.chown, fsroot / "f", -1, BOB, uid=ALICE, gid=ALICE)
    as_user(os.chown, fsroot / "f", -1, STAFF, uid=ALICE, gid=ALICE, groups=[STAFF])
    assert os.stat(fsroot / "f").st_gid == STAFF


def test_owner_may_chmod(fsroot):
    write_file(fsroot / "f", mode=0o644, owner=(ALICE, ALICE))
    as_user(os.chmod, fsroot / "f", 0o600, uid=ALICE, gid=ALICE)
    assert mode_of(fsroot / "f") == 0o600


def test_utime_with_explicit_times_on_a_file_one_does_not_own_is_eperm(fsroot):
    # Write permission is not enough for explicit times: only the owner may set them.
    write_file(fsroot / "f", mode=0o666)
    os.utime(fsroot / "f", ns=(LONG_AGO, LONG_AGO))
    expect_errno(errno.EPERM, os.utime, fsroot / "f", ns=(5, 5))
    assert os.stat(fsroot / "f").st_mtime_ns == LONG_AGO


def test_utime_now_needs_only_write_permission(fsroot):
    write_file(fsroot / "f", mode=0o666)
    os.utime(fsroot / "f", ns=(LONG_AGO, LONG_AGO))
    as_user(utimensat, fsroot / "f", NOW, NOW)
    assert os.stat(fsroot / "f").st_mtime_ns > LONG_AGO


def test_utime_now_without_write_permission_is_eacces(fsroot):
    write_file(fsroot / "f", mode=0o644)
    expect_errno(errno.EACCES, utimensat, fsroot / "f", NOW, NOW)


def test_owner_may_set_explicit_times(fsroot):
    write_file(fsroot / "f", mode=0o444, owner=(ALICE, ALICE))
    as_user(os.utime, fsroot / "f", ns=(LONG_AGO, LONG_AGO + 1), uid=ALICE, gid=ALICE)
    assert os.stat(fsroot / "f").st_mtime_ns == LONG_AGO + 1


# new files' owners


def test_new_files_belong_to_the_creating_user(fsroot):
    d = open_dir(fsroot)
    assert as_user(user_create, d / "f", uid=ALICE, gid=BOB, umask=0o022) == (ALICE, BOB, 0o644)
    st = as_user(os.stat, d / "f")
    assert (st.st_uid, st.st_gid) == (ALICE, BOB)


# sticky directories


@pytest.fixture
def sticky(fsroot):
    d = open_dir(fsroot, "tmp", mode=0o1777)
    write_file(d / "alices", b"alice", owner=(ALICE, ALICE))
    write_file(d / "bobs", b"bob", owner=(BOB, BOB))
    return d


def test_sticky_directory_stops_others_unlinking(sticky):
    expect_errno(errno.EPERM, os.unlink, sticky / "alices", uid=BOB, gid=BOB)
    assert read_file(sticky / "alices") == b"alice"


def test_sticky_directory_stops_others_renaming_away(sticky):
    expect_errno(errno.EPERM, os.rename, sticky / "alices", sticky / "taken", uid=BOB, gid=BOB)
    assert sorted(os.listdir(sticky)) == ["alices", "bobs"]


def test_sticky_directory_stops_others_renaming_over(sticky):
    expect_errno(errno.EPERM, os.rename, sticky / "bobs", sticky / "alices", uid=BOB, gid=BOB)
    assert read_file(sticky / "alices") == b"alice"


def test_sticky_directory_lets_the_owner_unlink_and_rename(sticky):
    as_user(os.rename, sticky / "alices", sticky / "renamed", uid=ALICE, gid=ALICE)
    as_user(os.unlink, sticky / "renamed", uid=ALICE, gid=ALICE)
    assert os.listdir(sticky) == ["bobs"]


def test_sticky_directory_lets_the_directory_owner_unlink(fsroot):
    d = open_dir(fsroot, "tmp", mode=0o1777, owner=(BOB, BOB))
    write_file(d / "alices", owner=(ALICE, ALICE))
    as_user(os.unlink, d / "alices", uid=BOB, gid=BOB)
    assert os.listdir(d) == []


def test_without_sticky_bit_others_may_unlink(fsroot):
    d = open_dir(fsroot, "open", mode=0o777)
    write_file(d / "alices", owner=(ALICE, ALICE))
    as_user(os.unlink, d / "alices", uid=BOB, gid=BOB)
    assert os.listdir(d) == []


# setgid directories and privilege bits


@pytest.fixture
def setgid_dir(fsroot):
    return open_dir(fsroot, "team", mode=0o2777, owner=(0, STAFF))


def test_setgid_directory_gives_new_files_its_group(setgid_dir):
    with open(setgid_dir / "by-root", "wb"):
        pass
    assert os.stat(setgid_dir / "by-root").st_gid == STAFF
    uid, gid, _ = as_user(user_create, setgid_dir / "by-alice", uid=ALICE, gid=ALICE)
    assert (uid, gid) == (ALICE, STAFF)


def test_setgid_directory_passes_the_bit_to_subdirectories(setgid_dir):
    os.mkdir(setgid_dir / "sub")
    st = os.stat(setgid_dir / "sub")
    assert st.st_gid == STAFF
    assert st.st_mode & stat.S_ISGID
    as_user(os.mkdir, setgid_dir / "alices", uid=ALICE, gid=ALICE)
    st = os.stat(setgid_dir / "alices")
    assert (st.st_uid, st.st_gid) == (ALICE, STAFF)
    assert st.st_mode & stat.S_ISGID


def test_setgid_directory_group_for_special_files_and_symlinks(setgid_dir):
    os.mkfifo(setgid_dir / "p")
    os.symlink("x", setgid_dir / "l")
    assert os.lstat(setgid_dir / "p").st_gid == STAFF
    assert os.lstat(setgid_dir / "l").st_gid == STAFF


def test_plain_directory_gives_new_files_the_creators_group(fsroot):
    d = open_dir(fsroot, "plain", mode=0o777, owner=(0, STAFF))
    _, gid, _ = as_user(user_create, d / "f", uid=ALICE, gid=ALICE)
    assert gid == ALICE


def test_chmod_by_non_member_of_the_files_group_clears_setgid(fsroot):
    # The owner keeps everything else, but may not grant setgid to a group not theirs.
    write_file(fsroot / "f", owner=(ALICE, STAFF))
    as_user(os.chmod, fsroot / "f", 0o2755, uid=ALICE, gid=ALICE)
    assert mode_of(fsroot / "f") == 0o755


def test_chmod_by_member_of_the_files_group_keeps_setgid(fsroot):
    write_file(fsroot / "f", owner=(ALICE, STAFF))
    as_user(os.chmod, fsroot / "f", 0o2755, uid=ALICE, gid=ALICE, groups=[STAFF])
    assert mode_of(fsroot / "f") == 0o2755


def test_owner_may_set_setuid(fsroot):
    write_file(fsroot / "f", owner=(ALICE, ALICE))
    as_user(os.chmod, fsroot / "f", 0o4755, uid=ALICE, gid=ALICE)
    assert mode_of(fsroot / "f") == 0o4755


def test_non_owner_writing_a_setuid_file_clears_setuid(fsroot):
    write_file(fsroot / "f", b"program", mode=0o4777)
    as_user(user_write, fsroot / "f", b"P")
    assert mode_of(fsroot / "f") == 0o777
    assert read_file(fsroot / "f") == b"Program"


def test_non_owner_writing_a_setgid_executable_clears_setgid(fsroot):
    write_file(fsroot / "f", b"program", mode=0o2777)
    as_user(user_write, fsroot / "f", b"P")
    assert mode_of(fsroot / "f") == 0o777


def test_non_owner_truncating_a_setuid_file_clears_setuid(fsroot):
    write_file(fsroot / "f", b"program", mode=0o4777)
    as_user(os.truncate, fsroot / "f", 3)
    assert mode_of(fsroot / "f") == 0o777
    assert read_file(fsroot / "f") == b"pro"


def test_root_writing_a_setuid_file_keeps_setuid(fsroot):
    write_file(fsroot / "f", b"program", mode=0o4755)
    user_write(fsroot / "f", b"P")
    assert mode_of(fsroot / "f") == 0o4755


# renames that need more than write permission on the parents


def test_moving_someone_elses_directory_to_another_parent_is_eacces(fsroot):
    # Its ".." must change, which needs write permission on the directory itself.
    a = open_dir(fsroot, "a")
    b = open_dir(fsroot, "b")
    os.mkdir(a / "roots", 0o755)
    expect_errno(errno.EACCES, os.rename, a / "roots", b / "roots")
    as_user(os.rename, a / "roots", a / "renamed")
    assert os.listdir(a) == ["renamed"]


# xattrs need the same permissions as data


def test_user_xattr_needs_write_permission_to_set(fsroot):
    write_file(fsroot / "f", mode=0o644)
    expect_errno(errno.EACCES, os.setxattr, fsroot / "f", "user.k", b"v")
    write_file(fsroot / "g", mode=0o666)
    as_user(os.setxattr, fsroot / "g", "user.k", b"v")
    assert os.getxattr(fsroot / "g", "user.k") == b"v"


def test_user_xattr_needs_read_permission_to_get(fsroot):
    write_file(fsroot / "f", mode=0o600)
    os.setxattr(fsroot / "f", "user.k", b"v")
    expect_errno(errno.EACCES, os.getxattr, fsroot / "f", "user.k")
