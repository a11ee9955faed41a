"""read/write/lseek/pread/pwrite/truncate/ftruncate, sparse and large files, mmap, fsync."""

from __future__ import annotations

import errno
import mmap
import os
import random

import pytest

from tests.posix.files import read_file, write_file

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


def pattern(n, seed=0):
    return random.Random(seed).randbytes(n)


class Fd:
    """An fd that closes itself: tests must not leak descriptors on failure."""

    def __init__(self, path, flags=os.O_RDWR, mode=0o644):
        self.fd = os.open(path, flags, mode)

    def __enter__(self):
        return self.fd

    def __exit__(self, *exc):
        os.close(self.fd)


@pytest.mark.core
@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 65 * KiB + 3])
def test_write_read_round_trip(fsroot, size):
    data = pattern(size, size)
    write_file(fsroot / "f", data)
    assert os.stat(fsroot / "f").st_size == size
    assert read_file(fsroot / "f") == data


def test_round_trip_across_megabyte_boundaries_in_odd_chunks(fsroot):
    # Odd sizes and offsets straddle whatever block or object size the store uses.
    data = pattern(5 * MiB + 333, 1)
    with Fd(fsroot / "f", os.O_CREAT | os.O_WRONLY) as fd:
        pos = 0
        for step in [1, 7, 4095, 65537, MiB - 1, MiB + 1, 3 * MiB]:
            chunk = data[pos : pos + step]
            os.write(fd, chunk)
            pos += len(chunk)
        os.write(fd, data[pos:])
    assert read_file(fsroot / "f") == data
    with Fd(fsroot / "f", os.O_RDONLY) as fd:
        for off, n in [(MiB - 5, 10), (2 * MiB - 1, 2), (4 * MiB + 17, MiB), (0, 3)]:
            assert os.pread(fd, n, off) == data[off : off + n]


@pytest.mark.core
def test_overwrite_in_the_middle(fsroot):
    write_file(fsroot / "f", b"a" * 10000)
    with Fd(fsroot / "f", os.O_WRONLY) as fd:
        os.pwrite(fd, b"XYZ", 4998)
    data = read_file(fsroot / "f")
    assert len(data) == 10000
    assert data == b"a" * 4998 + b"XYZ" + b"a" * 4999


@pytest.mark.core
def test_pread_and_pwrite_do_not_move_the_offset(fsroot):
    write_file(fsroot / "f", b"0123456789")
    with Fd(fsroot / "f") as fd:
        os.lseek(fd, 2, os.SEEK_SET)
        assert os.pread(fd, 3, 5) == b"567"
        assert os.pwrite(fd, b"ab", 0) == 2
        assert os.lseek(fd, 0, os.SEEK_CUR) == 2
        assert os.read(fd, 2) == b"23"
    assert read_file(fsroot / "f") == b"ab23456789"


@pytest.mark.core
def test_lseek_whence(fsroot):
    write_file(fsroot / "f", b"x" * 100)
    with Fd(fsroot / "f", os.O_RDONLY) as fd:
        assert os.lseek(fd, 10, os.SEEK_SET) == 10
        assert os.lseek(fd, 5, os.SEEK_CUR) == 15
        assert os.lseek(fd, -1, os.SEEK_END) == 99
        assert os.lseek(fd, 50, os.SEEK_END) == 150
        assert os.read(fd, 10) == b""


def test_lseek_to_negative_offset_is_einval(fsroot):
    write_file(fsroot / "f", b"abc")
    with Fd(fsroot / "f", os.O_RDONLY) as fd:
        with pytest.raises(OSError) as exc:
            os.lseek(fd, -10, os.SEEK_END)
        assert exc.value.errno == errno.EINVAL
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0


@pytest.mark.core
def test_read_past_eof_is_short_then_empty(fsroot):
    write_file(fsroot / "f", b"abcdef")
    with Fd(fsroot / "f", os.O_RDONLY) as fd:
        os.lseek(fd, 4, os.SEEK_SET)
        assert os.read(fd, 100) == b"ef"
        assert os.read(fd, 100) == b""
        assert os.pread(fd, 10, 6) == b""
        assert os.pread(fd, 10, 1000) == b""


@pytest.mark.core
def test_write_after_seek_past_eof_leaves_a_zero_hole(fsroot):
    write_file(fsroot / "f", b"ab")
    with Fd(fsroot / "f", os.O_WRONLY) as fd:
        os.lseek(fd, 10000, os.SEEK_SET)
        os.write(fd, b"cd")
    data = read_file(fsroot / "f")
    assert data == b"ab" + bytes(9998) + b"cd"


def test_sparse_file_at_one_gibibyte(fsroot):
    with Fd(fsroot / "f", os.O_CREAT | os.O_RDWR) as fd:
        os.pwrite(fd, b"head", 0)
        os.pwrite(fd, b"tail", GiB)
        assert os.fstat(fd).st_size == GiB + 4
        assert os.pread(fd, 4, GiB) == b"tail"
        # Holes read as zeros anywhere, including right before the data.
        for off in [4, MiB, GiB // 2 + 123, GiB - 4096]:
            assert os.pread(fd, 4096, off) == bytes(4096)
        assert os.pread(fd, 8, GiB - 4) == bytes(4) + b"tail"
    assert os.stat(fsroot / "f").st_size == GiB + 4


def test_sparse_file_st_blocks_counts_only_written_data(fsroot):
    with Fd(fsroot / "f", os.O_CREAT | os.O_WRONLY) as fd:
        os.pwrite(fd, b"x", GiB)
    st = os.stat(fsroot / "f")
    assert st.st_size == GiB + 1
    # One byte written: a block or a few, never anything like the 1 GiB size.
    assert st.st_blocks * 512 <= MiB


def test_st_blocks_grows_with_written_data(fsroot):
    write_file(fsroot / "f", pattern(MiB))
    st = os.stat(fsroot / "f")
    assert MiB <= st.st_blocks * 512 <= 2 * MiB


def test_file_beyond_five_gibibytes(fsroot):
    off = 5 * GiB + 7
    with Fd(fsroot / "f", os.O_CREAT | os.O_RDWR) as fd:
        assert os.pwrite(fd, b"far away", off) == 8
    assert os.stat(fsroot / "f").st_size == off + 8
    with Fd(fsroot / "f", os.O_RDONLY) as fd:
        assert os.pread(fd, 8, off) == b"far away"
        assert os.pread(fd, 16, off - 8) == bytes(8) + b"far away"
        assert os.lseek(fd, 0, os.SEEK_END) == off + 8
        assert os.pread(fd, 10, 4 * GiB) == bytes(10)


@pytest.mark.core
def test_truncate_shrinks_and_extends_with_zeros(fsroot):
    write_file(fsroot / "f", b"0123456789")
    os.truncate(fsroot / "f", 4)
    assert os.stat(fsroot / "f").st_size == 4
    assert read_file(fsroot / "f") == b"0123"
    os.truncate(fsroot / "f", 8)
    # The bytes cut off earlier must not come back.
    assert read_file(fsroot / "f") == b"0123" + bytes(4)


def test_ftruncate_then_write_within_the_cut_range(fsroot):
    data = pattern(3 * MiB, 2)
    write_file(fsroot / "f", data)
    with Fd(fsroot / "f") as fd:
        os.ftruncate(fd, MiB + 5)
        assert os.fstat(fd).st_size == MiB + 5
        os.pwrite(fd, b"end", 2 * MiB)
        assert os.fstat(fd).st_size == 2 * MiB + 3
    got = read_file(fsroot / "f")
    assert got[: MiB + 5] == data[: MiB + 5]
    assert got[MiB + 5 : 2 * MiB] == bytes(MiB - 5)
    assert got[2 * MiB :] == b"end"


@pytest.mark.core
def test_truncate_to_zero_and_to_same_size(fsroot):
    write_file(fsroot / "f", b"abc")
    os.truncate(fsroot / "f", 3)
    assert read_file(fsroot / "f") == b"abc"
    os.truncate(fsroot / "f", 0)
    assert read_file(fsroot / "f") == b""


def test_truncate_extend_to_large_sparse_size(fsroot):
    write_file(fsroot / "f", b"abc")
    os.truncate(fsroot / "f", 2 * GiB)
    st = os.stat(fsroot / "f")
    assert st.st_size == 2 * GiB
    assert st.st_blocks * 512 <= MiB
    with Fd(fsroot / "f", os.O_RDONLY) as fd:
        assert os.pread(fd, 6, 0) == b"abc" + bytes(3)
        assert os.pread(fd, 4, 2 * GiB - 4) == bytes(4)


def test_ftruncate_on_read_only_descriptor_is_einval(fsroot):
    write_file(fsroot / "f", b"abc")
    with Fd(fsroot / "f", os.O_RDONLY) as fd:
        with pytest.raises(OSError) as exc:
            os.ftruncate(fd, 0)
        assert exc.value.errno == errno.EINVAL
    assert read_file(fsroot / "f") == b"abc"


def test_truncate_negative_is_einval(fsroot):
    write_file(fsroot / "f", b"abc")
    with pytest.raises(OSError) as exc:
        os.truncate(fsroot / "f", -1)
    assert exc.value.errno == errno.EINVAL


def test_truncate_directory_is_eisdir(fsroot):
    (fsroot / "d").mkdir()
    with pytest.raises(OSError) as exc:
        os.truncate(fsroot / "d", 0)
    assert exc.value.errno == errno.EISDIR


def test_truncate_missing_is_enoent(fsroot):
    with pytest.raises(OSError) as exc:
        os.truncate(fsroot / "missing", 0)
    assert exc.value.errno == errno.ENOENT


@pytest.mark.core
def test_two_descriptors_see_each_others_writes(fsroot):
    write_file(fsroot / "f")
    with Fd(fsroot / "f", os.O_WRONLY) as w, Fd(fsroot / "f", os.O_RDONLY) as r:
        os.write(w, b"first")
        assert os.read(r, 100) == b"first"
        os.write(w, b"second")
        assert os.read(r, 100) == b"second"
        assert os.fstat(r).st_size == 11


def test_many_small_appends(fsroot):
    with Fd(fsroot / "f", os.O_CREAT | os.O_WRONLY | os.O_APPEND) as fd:
        for i in range(1000):
            os.write(fd, b"%04d\n" % i)
    assert read_file(fsroot / "f") == b"".join(b"%04d\n" % i for i in range(1000))


@pytest.mark.parametrize("flag", ["O_SYNC", "O_DSYNC"])
def test_synchronous_writes(fsroot, flag):
    with Fd(fsroot / "f", os.O_CREAT | os.O_WRONLY | getattr(os, flag)) as fd:
        assert os.write(fd, b"durable") == 7
    assert read_file(fsroot / "f") == b"durable"


def test_posix_fallocate_extends_with_zeros(fsroot):
    write_file(fsroot / "f", b"abc")
    with Fd(fsroot / "f") as fd:
        os.posix_fallocate(fd, 0, 100 * KiB)
        assert os.fstat(fd).st_size == 100 * KiB
        assert os.pread(fd, 6, 0) == b"abc" + bytes(3)
        assert os.pread(fd, 10, 100 * KiB - 10) == bytes(10)


def test_copy_file_range(fsroot):
    data = pattern(200 * KiB, 3)
    write_file(fsroot / "src", data)
    with (
        Fd(fsroot / "src", os.O_RDONLY) as src,
        Fd(fsroot / "dst", os.O_CREAT | os.O_WRONLY) as dst,
    ):
        done = 0
        while done < len(data):
            n = os.copy_file_range(src, dst, len(data) - done, done, done)
            assert n > 0
            done += n
    assert read_file(fsroot / "dst") == data


@pytest.mark.core
def test_fsync_and_fdatasync(fsroot):
    with Fd(fsroot / "f", os.O_CREAT | os.O_WRONLY) as fd:
        os.write(fd, b"data")
        os.fsync(fd)
        os.write(fd, b"more")
        os.fdatasync(fd)
    assert read_file(fsroot / "f") == b"datamore"


@pytest.mark.core
def test_fsync_of_a_directory(fsroot):
    write_file(fsroot / "f", b"x")
    fd = os.open(fsroot, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
        os.fdatasync(fd)
    finally:
        os.close(fd)


def test_fsync_on_read_only_descriptor(fsroot):
    write_file(fsroot / "f", b"x")
    with Fd(fsroot / "f", os.O_RDONLY) as fd:
        os.fsync(fd)


# mmap


def test_shared_writable_mmap_is_seen_by_read(fsroot):
    write_file(fsroot / "f", bytes(3 * 4096))
    with Fd(fsroot / "f") as fd:
        with mmap.mmap(fd, 3 * 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as m:
            m[0:5] = b"hello"
            m[4096 + 100 : 4096 + 105] = b"world"
            m[-3:] = b"end"
            m.flush()
        assert os.pread(fd, 5, 0) == b"hello"
    data = read_file(fsroot / "f")
    assert data[4196:4201] == b"world"
    assert data.endswith(b"end")
    assert len(data) == 3 * 4096


def test_mmap_after_close_and_msync_persists(fsroot):
    write_file(fsroot / "f", bytes(8192))
    fd = os.open(fsroot / "f", os.O_RDWR)
    m = mmap.mmap(fd, 8192)
    # The mapping outlives the descriptor; writes through it still reach the file.
    os.close(fd)
    try:
        m[8000:8003] = b"abc"
        m.flush()
    finally:
        m.close()
    assert read_file(fsroot / "f")[8000:8003] == b"abc"


@pytest.mark.core
def test_mmap_read_of_file_written_with_write(fsroot):
    data = pattern(100 * KiB + 5, 4)
    write_file(fsroot / "f", data)
    with Fd(fsroot / "f", os.O_RDONLY) as fd:
        with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as m:
            assert len(m) == len(data)
            assert m[:] == data


def test_write_is_seen_by_an_existing_mapping(fsroot):
    write_file(fsroot / "f", bytes(4096))
    with Fd(fsroot / "f") as fd:
        with mmap.mmap(fd, 4096, prot=mmap.PROT_READ) as m:
            assert m[10:13] == bytes(3)
            os.pwrite(fd, b"new", 10)
            assert m[10:13] == b"new"


def test_mmap_of_sparse_region_reads_zeros(fsroot):
    with Fd(fsroot / "f", os.O_CREAT | os.O_RDWR) as fd:
        os.pwrite(fd, b"z", 10 * MiB)
        with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as m:
            assert m[5 * MiB : 5 * MiB + 4096] == bytes(4096)
            assert m[10 * MiB] == ord("z")
