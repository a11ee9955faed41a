"""mknod: FIFOs, sockets, device nodes; and statfs."""

from __future__ import annotations

import errno
import os
import socket
import stat
import threading

import pytest

DEADLINE = 10.0


@pytest.fixture
def threads():
    """Threads a test starts; joined afterwards so none outlives its test."""
    started = []
    yield started
    for t in started:
        t.join(DEADLINE)
        assert not t.is_alive(), f"thread {t.name} still running"


def start_thread(threads, target, *args):
    t = threading.Thread(target=target, args=args, daemon=True)
    threads.append(t)
    t.start()
    return t


def test_mkfifo_creates_a_fifo(fsroot):
    os.mkfifo(fsroot / "p", 0o640)
    st = os.lstat(fsroot / "p")
    assert stat.S_ISFIFO(st.st_mode)
    assert st.st_size == 0
    assert st.st_nlink == 1


def test_fifo_carries_data_between_a_writer_thread_and_a_reader(fsroot, threads):
    os.mkfifo(fsroot / "p")
    payload = b"".join(b"line %d\n" % i for i in range(5000))
    errors = []

    def writer():
        try:
            # Blocks until the reader opens: the FIFO is served by the kernel, not the store.
            with open(fsroot / "p", "wb") as f:
                f.write(payload)
        except BaseException as exc:
            errors.append(exc)

    start_thread(threads, writer)
    with open(fsroot / "p", "rb") as f:
        received = f.read()
    threads[0].join(DEADLINE)
    assert not errors
    assert received == payload


def test_fifo_nonblocking_open_for_write_without_reader_is_enxio(fsroot):
    os.mkfifo(fsroot / "p")
    with pytest.raises(OSError) as exc:
        os.open(fsroot / "p", os.O_WRONLY | os.O_NONBLOCK)
    assert exc.value.errno == errno.ENXIO


def test_mkfifo_existing_is_eexist(fsroot):
    os.mkfifo(fsroot / "p")
    with pytest.raises(OSError) as exc:
        os.mkfifo(fsroot / "p")
    assert exc.value.errno == errno.EEXIST


def test_unix_socket_bound_in_the_directory(fsroot):
    dirfd = os.open(fsroot, os.O_RDONLY | os.O_DIRECTORY)
    # sun_path holds only 108 bytes; going through the descriptor keeps it short
    # whatever the mount's path is.
    address = f"/proc/self/fd/{dirfd}/sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(address)
        server.listen(1)
        st = os.lstat(fsroot / "sock")
        assert stat.S_ISSOCK(st.st_mode)
        client.settimeout(DEADLINE)
        client.connect(address)
        conn, _ = server.accept()
        with conn:
            conn.settimeout(DEADLINE)
            client.sendall(b"ping")
            assert conn.recv(4) == b"ping"
    finally:
        client.close()
        server.close()
        os.close(dirfd)
    with os.scandir(fsroot) as it:
        [entry] = list(it)
    assert entry.name == "sock"
    assert not entry.is_file() and not entry.is_dir()
    os.unlink(fsroot / "sock")
    assert os.listdir(fsroot) == []


def test_mknod_socket(fsroot):
    os.mknod(fsroot / "s", stat.S_IFSOCK | 0o600)
    assert stat.S_ISSOCK(os.lstat(fsroot / "s").st_mode)


def test_mknod_character_device(fsroot):
    os.mknod(fsroot / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    st = os.lstat(fsroot / "null")
    assert stat.S_ISCHR(st.st_mode)
    assert stat.S_IMODE(st.st_mode) & 0o600 == 0o600
    assert st.st_rdev == os.makedev(1, 3)
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)


def test_mknod_block_device_with_large_numbers(fsroot):
    dev = os.makedev(259, 70000)
    os.mknod(fsroot / "blk", stat.S_IFBLK | 0o600, dev)
    st = os.lstat(fsroot / "blk")
    assert stat.S_ISBLK(st.st_mode)
    assert st.st_rdev == dev


def test_device_node_survives_rename_and_keeps_rdev(fsroot):
    os.mknod(fsroot / "a", stat.S_IFCHR | 0o600, os.makedev(5, 1))
    os.rename(fsroot / "a", fsroot / "b")
    assert os.lstat(fsroot / "b").st_rdev == os.makedev(5, 1)


def test_mknod_regular_file(fsroot):
    os.mknod(fsroot / "f", stat.S_IFREG | 0o644)
    st = os.lstat(fsroot / "f")
    assert stat.S_ISREG(st.st_mode)
    assert st.st_size == 0


def test_mknod_existing_is_eexist(fsroot):
    os.mknod(fsroot / "f", stat.S_IFREG | 0o644)
    with pytest.raises(OSError) as exc:
        os.mknod(fsroot / "f", stat.S_IFCHR | 0o644, os.makedev(1, 3))
    assert exc.value.errno == errno.EEXIST


def test_mknod_directory_type_is_eperm(fsroot):
    # Linux refuses S_IFDIR through mknod with EPERM.
    with pytest.raises(OSError) as exc:
        os.mknod(fsroot / "d", stat.S_IFDIR | 0o755)
    assert exc.value.errno == errno.EPERM


def test_special_files_can_be_hard_linked(fsroot):
    os.mkfifo(fsroot / "p")
    os.link(fsroot / "p", fsroot / "q")
    assert os.lstat(fsroot / "p").st_nlink == 2
    assert stat.S_ISFIFO(os.lstat(fsroot / "q").st_mode)


# statfs


@pytest.mark.core
def test_statvfs(fsroot):
    st = os.statvfs(fsroot)
    assert st.f_namemax == 255
    assert st.f_bsize > 0
    assert st.f_frsize > 0
    assert st.f_blocks > 0
    assert 0 <= st.f_bavail <= st.f_bfree <= st.f_blocks
    assert st.f_ffree <= st.f_files


def test_statvfs_on_a_file_and_a_descriptor(fsroot):
    with open(fsroot / "f", "wb") as f:
        f.write(b"x")
        by_fd = os.statvfs(f.fileno())
    by_path = os.statvfs(fsroot / "f")
    assert by_fd.f_namemax == by_path.f_namemax == 255
    assert by_fd.f_bsize == by_path.f_bsize


def test_statvfs_missing_is_enoent(fsroot):
    with pytest.raises(OSError) as exc:
        os.statvfs(fsroot / "missing")
    assert exc.value.errno == errno.ENOENT
