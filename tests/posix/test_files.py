"""open(2)/creat(2): flags, errors and name lengths."""

from __future__ import annotations

import contextlib
import errno
import os

import pytest

from tests.posix.files import read_file, write_file

NAME_MAX = 255


@contextlib.contextmanager
def umask(mask):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.core
def test_create_write_read_back(fsroot):
    path = fsroot / "f"
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    try:
        assert os.write(fd, b"hello") == 5
    finally:
        os.close(fd)
    assert read_file(path) == b"hello"
    assert os.listdir(fsroot) == ["f"]


@pytest.mark.core
def test_creat_excl_on_existing_is_eexist(fsroot):
    write_file(fsroot / "f", b"keep")
    with pytest.raises(OSError) as exc:
        os.open(fsroot / "f", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    assert exc.value.errno == errno.EEXIST
    assert read_file(fsroot / "f") == b"keep"


def test_creat_excl_on_existing_directory_is_eexist(fsroot):
    (fsroot / "d").mkdir()
    with pytest.raises(OSError) as exc:
        os.open(fsroot / "d", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    assert exc.value.errno == errno.EEXIST


@pytest.mark.core
def test_creat_excl_on_dangling_symlink_is_eexist(fsroot):
    # O_EXCL never follows a symlink, even one that points nowhere.
    os.symlink("nowhere", fsroot / "l")
    with pytest.raises(OSError) as exc:
        os.open(fsroot / "l", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    assert exc.value.errno == errno.EEXIST
    assert not (fsroot / "nowhere").exists()


def test_creat_through_dangling_symlink_creates_target(fsroot):
    os.symlink("target", fsroot / "l")
    fd = os.open(fsroot / "l", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"x")
    os.close(fd)
    assert read_file(fsroot / "target") == b"x"
    assert os.path.islink(fsroot / "l")


@pytest.mark.core
def test_creat_existing_without_excl_opens_it(fsroot):
    write_file(fsroot / "f", b"data")
    ino = os.stat(fsroot / "f").st_ino
    fd = os.open(fsroot / "f", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        assert os.fstat(fd).st_ino == ino
        assert os.read(fd, 10) == b"data"
    finally:
        os.close(fd)


@pytest.mark.core
def test_open_missing_is_enoent(fsroot):
    with pytest.raises(OSError) as exc:
        os.open(fsroot / "missing", os.O_RDONLY)
    assert exc.value.errno == errno.ENOENT


@pytest.mark.core
def test_create_in_missing_directory_is_enoent(fsroot):
    with pytest.raises(OSError) as exc:
        os.open(fsroot / "nodir" / "f", os.O_CREAT | os.O_WRONLY, 0o644)
    assert exc.value.errno == errno.ENOENT


@pytest.mark.core
def test_path_through_a_file_is_enotdir(fsroot):
    write_file(fsroot / "f")
    with pytest.raises(OSError) as exc:
        os.open(fsroot / "f" / "x", os.O_RDONLY)
    assert exc.value.errno == errno.ENOTDIR
    with pytest.raises(OSError) as exc:
        os.open(fsroot / "f" / "x", os.O_CREAT | os.O_WRONLY, 0o644)
    assert exc.value.errno == errno.ENOTDIR


@pytest.mark.core
def test_trailing_slash_on_file_is_enotdir(fsroot):
    write_file(fsroot / "f")
    with pytest.raises(OSError) as exc:
        os.open(str(fsroot / "f") + "/", os.O_RDONLY)
    assert exc.value.errno == errno.ENOTDIR


def test_create_with_trailing_slash_is_eisdir(fsroot):
    with pytest.raises(OSError) as exc:
        os.open(str(fsroot / "new") + "/", os.O_CREAT | os.O_WRONLY, 0o644)
    assert exc.value.errno == errno.EISDIR
    assert not (fsroot / "new").exists()


@pytest.mark.core
@pytest.mark.parametrize("flags", [os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_CREAT])
def test_open_directory_for_write_is_eisdir(fsroot, flags):
    (fsroot / "d").mkdir()
    with pytest.raises(OSError) as exc:
        os.open(fsroot / "d", flags, 0o644)
    assert exc.value.errno == errno.EISDIR


def test_open_directory_read_only_works(fsroot):
    (fsroot / "d").mkdir()
    fd = os.open(fsroot / "d", os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert os.path.isdir(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def test_o_directory_on_a_file_is_enotdir(fsroot):
    write_file(fsroot / "f")
    with pytest.raises(OSError) as exc:
        os.open(fsroot / "f", os.O_RDONLY | os.O_DIRECTORY)
    assert exc.value.errno == errno.ENOTDIR


def test_o_nofollow_on_symlink_is_eloop(fsroot):
    write_file(fsroot / "f")
    os.symlink("f", fsroot / "l")
    with pytest.raises(OSError) as exc:
        os.open(fsroot / "l", os.O_RDONLY | os.O_NOFOLLOW)
    assert exc.value.errno == errno.ELOOP


@pytest.mark.core
def test_o_trunc_empties_the_file(fsroot):
    write_file(fsroot / "f", b"0123456789")
    fd = os.open(fsroot / "f", os.O_WRONLY | os.O_TRUNC)
    try:
        assert os.fstat(fd).st_size == 0
        os.write(fd, b"ab")
    finally:
        os.close(fd)
    assert read_file(fsroot / "f") == b"ab"


@pytest.mark.core
def test_o_trunc_with_o_creat_on_existing(fsroot):
    write_file(fsroot / "f", b"x" * 10000)
    fd = os.open(fsroot / "f", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.close(fd)
    assert os.stat(fsroot / "f").st_size == 0
    assert read_file(fsroot / "f") == b""


@pytest.mark.core
def test_o_append_writes_at_end_even_after_lseek(fsroot):
    write_file(fsroot / "f", b"abc")
    fd = os.open(fsroot / "f", os.O_WRONLY | os.O_APPEND)
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, b"XY")
        # With O_APPEND the offset is the end after every write.
        assert os.lseek(fd, 0, os.SEEK_CUR) == 5
        os.lseek(fd, 1, os.SEEK_SET)
        os.write(fd, b"Z")
    finally:
        os.close(fd)
    assert read_file(fsroot / "f") == b"abcXYZ"


def test_o_append_from_two_descriptors_interleaves_without_loss(fsroot):
    write_file(fsroot / "f")
    a = os.open(fsroot / "f", os.O_WRONLY | os.O_APPEND)
    b = os.open(fsroot / "f", os.O_WRONLY | os.O_APPEND)
    try:
        for i in range(20):
            os.write(a if i % 2 else b, bytes([65 + i]))
    finally:
        os.close(a)
        os.close(b)
    assert read_file(fsroot / "f") == bytes(range(65, 85))


@pytest.mark.core
def test_write_on_read_only_descriptor_is_ebadf(fsroot):
    write_file(fsroot / "f", b"x")
    fd = os.open(fsroot / "f", os.O_RDONLY)
    try:
        with pytest.raises(OSError) as exc:
            os.write(fd, b"y")
        assert exc.value.errno == errno.EBADF
    finally:
        os.close(fd)


def test_read_on_write_only_descriptor_is_ebadf(fsroot):
    write_file(fsroot / "f", b"x")
    fd = os.open(fsroot / "f", os.O_WRONLY)
    try:
        with pytest.raises(OSError) as exc:
            os.read(fd, 1)
        assert exc.value.errno == errno.EBADF
    finally:
        os.close(fd)


def test_create_mode_is_masked_by_umask(fsroot):
    with umask(0o027):
        os.close(os.open(fsroot / "f", os.O_CREAT | os.O_WRONLY, 0o777))
    assert os.stat(fsroot / "f").st_mode & 0o7777 == 0o750
    with umask(0):
        os.close(os.open(fsroot / "g", os.O_CREAT | os.O_WRONLY, 0o641))
    assert os.stat(fsroot / "g").st_mode & 0o7777 == 0o641


def test_create_read_only_mode_still_gives_writable_descriptor(fsroot):
    # The mode applies to later opens; the creating open keeps its access.
    fd = os.open(fsroot / "f", os.O_CREAT | os.O_RDWR, 0o444)
    try:
        assert os.write(fd, b"abc") == 3
        assert os.pread(fd, 3, 0) == b"abc"
    finally:
        os.close(fd)
    assert os.stat(fsroot / "f").st_mode & 0o777 == 0o444


def test_empty_path_is_enoent(fsroot):
    with pytest.raises(OSError) as exc:
        os.open("", os.O_RDONLY)
    assert exc.value.errno == errno.ENOENT


@pytest.mark.parametrize(
    "name",
    [
        b"with space",
        b"caf\xc3\xa9-\xe2\x82\xac",
        b"not-utf8-\xff\xfe",
        b"new\nline",
        b"tab\tand*?[glob]",
        b".hidden",
        b"...",
        b"-dash",
        b"back\\slash",
        b"%2F-percent",
    ],
)
def test_unusual_names_round_trip(fsroot, name):
    root = os.fsencode(fsroot)
    path = os.path.join(root, name)
    with open(path, "wb") as f:
        f.write(name)
    assert os.listdir(root) == [name]
    with open(path, "rb") as f:
        assert f.read() == name
    os.unlink(path)
    assert os.listdir(root) == []


def test_names_differing_only_in_case_are_distinct(fsroot):
    write_file(fsroot / "name", b"lower")
    write_file(fsroot / "NAME", b"upper")
    assert sorted(os.listdir(fsroot)) == ["NAME", "name"]
    assert read_file(fsroot / "name") == b"lower"


# Name-length limits, for every call that creates a name.


def _create(fsroot, name):
    os.close(os.open(fsroot / name, os.O_CREAT | os.O_WRONLY, 0o644))


def _mkdir(fsroot, name):
    os.mkdir(fsroot / name)


def _rename(fsroot, name):
    write_file(fsroot / "src")
    os.rename(fsroot / "src", fsroot / name)


def _symlink(fsroot, name):
    os.symlink("target", fsroot / name)


def _link(fsroot, name):
    if not (fsroot / "orig").exists():
        write_file(fsroot / "orig")
    os.link(fsroot / "orig", fsroot / name)


def _mkfifo(fsroot, name):
    os.mkfifo(fsroot / name)


CREATORS = [_create, _mkdir, _rename, _symlink, _link, _mkfifo]


@pytest.mark.core
@pytest.mark.parametrize("creator", CREATORS, ids=lambda c: c.__name__.lstrip("_"))
def test_name_of_255_bytes_works(fsroot, creator):
    name = "n" * NAME_MAX
    creator(fsroot, name)
    assert name in os.listdir(fsroot)
    os.lstat(fsroot / name)


@pytest.mark.parametrize("creator", CREATORS, ids=lambda c: c.__name__.lstrip("_"))
def test_name_of_256_bytes_is_enametoolong(fsroot, creator):
    name = "n" * (NAME_MAX + 1)
    with pytest.raises(OSError) as exc:
        creator(fsroot, name)
    assert exc.value.errno == errno.ENAMETOOLONG


def test_name_of_255_bytes_counts_bytes_not_characters(fsroot):
    # 85 three-byte characters: 255 bytes. One more ASCII byte is too long.
    name = "\u20ac" * 85
    write_file(fsroot / name, b"x")
    assert os.listdir(fsroot) == [name]
    with pytest.raises(OSError) as exc:
        write_file(fsroot / (name + "x"))
    assert exc.value.errno == errno.ENAMETOOLONG


def test_lookup_of_256_byte_name_is_enametoolong(fsroot):
    with pytest.raises(OSError) as exc:
        os.stat(fsroot / ("n" * (NAME_MAX + 1)))
    assert exc.value.errno == errno.ENAMETOOLONG
