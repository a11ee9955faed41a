"""System calls the os module lacks, through ctypes, and a wait for the clock to move on."""

from __future__ import annotations

import ctypes
import os
import time

_libc = ctypes.CDLL(None, use_errno=True)

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
RENAME_NOREPLACE = 1 << 0
RENAME_EXCHANGE = 1 << 1
_UTIME_NOW = (1 << 30) - 1
_UTIME_OMIT = (1 << 30) - 2
_CLOCK_REALTIME_COARSE = 5
FUSE_SUPER_MAGIC = 0x65735546

# Sentinels rather than the kernel's numbers: those are also valid nanosecond counts.
NOW = "UTIME_NOW"
OMIT = "UTIME_OMIT"


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
_libc.renameat2.argtypes.append(ctypes.c_uint)
_libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
_libc.clock_gettime.argtypes = [ctypes.c_int, ctypes.POINTER(_Timespec)]


def _raise_errno(path: object) -> None:
    err = ctypes.get_errno()
    raise OSError(err, os.strerror(err), os.fsdecode(path))


def renameat2(old: os.PathLike | str, new: os.PathLike | str, flags: int) -> None:
    if _libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new), flags) != 0:
        _raise_errno(old)


def _timespec(value: int | str) -> _Timespec:
    if value == NOW:
        return _Timespec(0, _UTIME_NOW)
    if value == OMIT:
        return _Timespec(0, _UTIME_OMIT)
    return _Timespec(*divmod(value, 1_000_000_000))


def utimensat(
    path: os.PathLike | str,
    atime: int | str | None = None,
    mtime: int | str | None = None,
    follow_symlinks: bool = True,
) -> None:
    """Times in ns, or NOW / OMIT; both None passes a NULL times pointer (now, now)."""
    times = None
    if atime is not None or mtime is not None:
        times = (_Timespec * 2)(_timespec(atime), _timespec(mtime))
    flags = 0 if follow_symlinks else AT_SYMLINK_NOFOLLOW
    if _libc.utimensat(AT_FDCWD, os.fsencode(path), times, flags) != 0:
        _raise_errno(path)


def _coarse_now_ns() -> int:
    ts = _Timespec()
    if _libc.clock_gettime(_CLOCK_REALTIME_COARSE, ctypes.byref(ts)) != 0:
        _raise_errno("clock_gettime")
    return ts.tv_sec * 1_000_000_000 + ts.tv_nsec


def wait_clock_past(stamp_ns: int, deadline: float = 5.0) -> None:
    """Return once any timestamp taken from now on is later than stamp_ns.

    Kernel timestamps come from the coarse clock (a tick, a few ms) and a FUSE
    daemon's from a finer one; once the coarse clock has passed stamp_ns both have.
    """
    end = time.monotonic() + deadline
    while _coarse_now_ns() <= stamp_ns:
        if time.monotonic() > end:
            raise TimeoutError(f"clock did not pass {stamp_ns} within {deadline}s")


def statfs_type(path: os.PathLike | str) -> int:
    """f_type of statfs(2): which filesystem the path lives on."""
    # struct statfs starts with a long f_type on every Linux ABI; 256 bytes covers the rest.
    buf = ctypes.create_string_buffer(256)
    if _libc.statfs(os.fsencode(path), buf) != 0:
        _raise_errno(path)
    return ctypes.c_long.from_buffer(buf).value


def is_fuse(path: os.PathLike | str) -> bool:
    return statfs_type(path) == FUSE_SUPER_MAGIC
