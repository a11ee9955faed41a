"""Extended attributes in the user. namespace."""

from __future__ import annotations

import errno
import os

import pytest

from tests.posix.files import write_file
from tests.posix.libc import is_fuse, wait_clock_past

XATTR_SIZE_MAX = 65536
XATTR_NAME_MAX = 255


def user_xattrs(path, follow_symlinks=True):
    return sorted(
        n for n in os.listxattr(path, follow_symlinks=follow_symlinks) if n.startswith("user.")
    )


@pytest.fixture(params=["file", "dir"])
def target(request, fsroot):
    path = fsroot / "target"
    if request.param == "file":
        write_file(path, b"content")
    else:
        os.mkdir(path)
    return path


@pytest.mark.core
def test_set_get_list_remove(target):
    os.setxattr(target, "user.colour", b"blue")
    os.setxattr(target, "user.size", b"large")
    assert os.getxattr(target, "user.colour") == b"blue"
    assert user_xattrs(target) == ["user.colour", "user.size"]
    os.removexattr(target, "user.colour")
    assert user_xattrs(target) == ["user.size"]
    with pytest.raises(OSError) as exc:
        os.getxattr(target, "user.colour")
    assert exc.value.errno == errno.ENODATA


@pytest.mark.core
def test_replace_value(target):
    os.setxattr(target, "user.k", b"first, longer value")
    os.setxattr(target, "user.k", b"2nd")
    assert os.getxattr(target, "user.k") == b"2nd"
    assert user_xattrs(target) == ["user.k"]


@pytest.mark.core
def test_empty_value(target):
    os.setxattr(target, "user.empty", b"")
    assert os.getxattr(target, "user.empty") == b""
    assert "user.empty" in user_xattrs(target)


@pytest.mark.core
def test_xattr_create_on_existing_is_eexist(target):
    os.setxattr(target, "user.k", b"v")
    with pytest.raises(OSError) as exc:
        os.setxattr(target, "user.k", b"w", os.XATTR_CREATE)
    assert exc.value.errno == errno.EEXIST
    assert os.getxattr(target, "user.k") == b"v"


def test_xattr_create_on_missing_works(target):
    os.setxattr(target, "user.k", b"v", os.XATTR_CREATE)
    assert os.getxattr(target, "user.k") == b"v"


@pytest.mark.core
def test_xattr_replace_on_missing_is_enodata(target):
    with pytest.raises(OSError) as exc:
        os.setxattr(target, "user.k", b"v", os.XATTR_REPLACE)
    assert exc.value.errno == errno.ENODATA
    assert user_xattrs(target) == []


@pytest.mark.core
def test_xattr_replace_on_existing_works(target):
    os.setxattr(target, "user.k", b"v")
    os.setxattr(target, "user.k", b"w", os.XATTR_REPLACE)
    assert os.getxattr(target, "user.k") == b"w"


@pytest.mark.core
def test_get_missing_is_enodata(target):
    with pytest.raises(OSError) as exc:
        os.getxattr(target, "user.missing")
    assert exc.value.errno == errno.ENODATA


@pytest.mark.core
def test_remove_missing_is_enodata(target):
    with pytest.raises(OSError) as exc:
        os.removexattr(target, "user.missing")
    assert exc.value.errno == errno.ENODATA


@pytest.mark.core
def test_binary_value_with_nul_bytes(target):
    value = bytes(range(256))
    os.setxattr(target, "user.bin", value)
    assert os.getxattr(target, "user.bin") == value


def test_unusual_names(target):
    names = ["user.a", "user." + "n" * (XATTR_NAME_MAX - 5), "user.with space", "user.caf\u00e9"]
    for i, name in enumerate(names):
        os.setxattr(target, name, str(i).encode())
    assert user_xattrs(target) == sorted(names)
    for i, name in enumerate(names):
        assert os.getxattr(target, name) == str(i).encode()


def test_many_attributes(target):
    for i in range(50):
        os.setxattr(target, f"user.attr{i:02d}", b"v%d" % i)
    assert user_xattrs(target) == [f"user.attr{i:02d}" for i in range(50)]
    assert os.getxattr(target, "user.attr37") == b"v37"


@pytest.mark.parametrize("size", [1, 255, 1024, 3000])
def test_values_of_several_sizes(target, size):
    value = bytes(i % 251 for i in range(size))
    os.setxattr(target, "user.big", value)
    assert os.getxattr(target, "user.big") == value


def test_value_of_64_kib(fsroot):
    write_file(fsroot / "f")
    value = bytes(i % 253 for i in range(XATTR_SIZE_MAX))
    if is_fuse(fsroot):
        os.setxattr(fsroot / "f", "user.huge", value)
        assert os.getxattr(fsroot / "f", "user.huge") == value
        assert len(os.getxattr(fsroot / "f", "user.huge")) == XATTR_SIZE_MAX
    else:
        # The ext4 stand-in keeps a value within one block and refuses with ENOSPC;
        # objfs has no such limit and must take the full VFS maximum.
        try:
            os.setxattr(fsroot / "f", "user.huge", value)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        else:
            assert os.getxattr(fsroot / "f", "user.huge") == value


def test_value_over_64_kib_is_e2big(fsroot):
    write_file(fsroot / "f")
    with pytest.raises(OSError) as exc:
        os.setxattr(fsroot / "f", "user.huge", bytes(XATTR_SIZE_MAX + 1))
    assert exc.value.errno == errno.E2BIG


def test_name_too_long_is_erange(fsroot):
    write_file(fsroot / "f")
    with pytest.raises(OSError) as exc:
        os.setxattr(fsroot / "f", "user." + "n" * XATTR_NAME_MAX, b"v")
    assert exc.value.errno == errno.ERANGE


def test_unknown_namespace_is_eopnotsupp(fsroot):
    write_file(fsroot / "f")
    with pytest.raises(OSError) as exc:
        os.setxattr(fsroot / "f", "bogus.name", b"v")
    assert exc.value.errno == errno.EOPNOTSUPP


def test_user_xattr_on_symlink_is_eperm(fsroot):
    # Linux allows user.* only on regular files and directories.
    write_file(fsroot / "f")
    os.symlink("f", fsroot / "l")
    with pytest.raises(OSError) as exc:
        os.setxattr(fsroot / "l", "user.k", b"v", follow_symlinks=False)
    assert exc.value.errno == errno.EPERM
    assert user_xattrs(fsroot / "l", follow_symlinks=False) == []


def test_xattr_through_symlink_reaches_target(fsroot):
    write_file(fsroot / "f")
    os.symlink("f", fsroot / "l")
    os.setxattr(fsroot / "l", "user.k", b"v")
    assert os.getxattr(fsroot / "f", "user.k") == b"v"


def test_xattr_on_descriptor(fsroot):
    write_file(fsroot / "f")
    fd = os.open(fsroot / "f", os.O_RDONLY)
    try:
        os.setxattr(fd, "user.k", b"v")
        assert os.getxattr(fd, "user.k") == b"v"
        assert "user.k" in os.listxattr(fd)
        os.removexattr(fd, "user.k")
    finally:
        os.close(fd)
    assert user_xattrs(fsroot / "f") == []


@pytest.mark.core
def test_xattrs_survive_rename_and_are_shared_by_hard_links(fsroot):
    write_file(fsroot / "a")
    os.setxattr(fsroot / "a", "user.k", b"v")
    os.rename(fsroot / "a", fsroot / "b")
    os.link(fsroot / "b", fsroot / "c")
    os.setxattr(fsroot / "c", "user.k2", b"v2")
    assert user_xattrs(fsroot / "b") == ["user.k", "user.k2"]
    assert os.getxattr(fsroot / "b", "user.k2") == b"v2"


@pytest.mark.core
def test_xattrs_do_not_leak_to_a_new_file_of_the_same_name(fsroot):
    write_file(fsroot / "f")
    os.setxattr(fsroot / "f", "user.k", b"v")
    os.unlink(fsroot / "f")
    write_file(fsroot / "f")
    assert user_xattrs(fsroot / "f") == []


def test_setxattr_changes_ctime(fsroot):
    write_file(fsroot / "f")
    ctime = os.stat(fsroot / "f").st_ctime_ns
    wait_clock_past(ctime)
    os.setxattr(fsroot / "f", "user.k", b"v")
    assert os.stat(fsroot / "f").st_ctime_ns > ctime


def test_xattr_on_missing_file_is_enoent(fsroot):
    with pytest.raises(OSError) as exc:
        os.setxattr(fsroot / "missing", "user.k", b"v")
    assert exc.value.errno == errno.ENOENT
