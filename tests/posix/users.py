"""Run an operation as an unprivileged user, in a forked child that drops root.

The mount uses default_permissions, so the kernel checks access as for a local
filesystem; only a process whose credentials really are another user's sees
those checks. The child reports the callable's result, or the errno of the
OSError it raised, through a pipe; the parent re-raises that OSError, so tests
use pytest.raises exactly as for a call made in-process.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import time
from collections.abc import Callable, Iterable
from typing import Any

NOBODY = 65534
DEADLINE = 30.0


class ChildFailed(Exception):
    """The child raised something other than OSError, or died without reporting."""


def as_user(
    fn: Callable[..., Any],
    *args: Any,
    uid: int = NOBODY,
    gid: int = NOBODY,
    groups: Iterable[int] = (),
    umask: int | None = None,
    deadline: float = DEADLINE,
    **kwargs: Any,
) -> Any:
    """Return fn(*args, **kwargs) as run by uid/gid with supplementary groups."""
    groups = list(groups)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child(r, w, fn, args, kwargs, uid, gid, groups, umask)
    os.close(w)
    reaped = False
    try:
        data = _read_until_eof(r, deadline)
        _, status = os.waitpid(pid, 0)
        reaped = True
    finally:
        os.close(r)
        if not reaped:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    if not data:
        raise ChildFailed(f"child exited with status {status:#x} without reporting")
    outcome = pickle.loads(data)
    if outcome[0] == "ok":
        return outcome[1]
    if outcome[0] == "errno":
        _, err, strerror, filename = outcome
        raise OSError(err, strerror, filename)
    raise ChildFailed(outcome[1])


def _child(r, w, fn, args, kwargs, uid, gid, groups, umask) -> None:
    # Whatever happens, the child must never return into pytest: _exit in finally.
    status = 1
    try:
        os.close(r)
        try:
            if umask is not None:
                os.umask(umask)
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            outcome = ("ok", fn(*args, **kwargs))
        except OSError as exc:
            outcome = ("errno", exc.errno, exc.strerror, exc.filename)
        except BaseException as exc:
            outcome = ("error", f"{type(exc).__name__}: {exc}")
        try:
            data = pickle.dumps(outcome)
        except Exception as exc:
            data = pickle.dumps(("error", f"result cannot be pickled: {exc!r}"))
        view = memoryview(data)
        while view:
            view = view[os.write(w, view) :]
        status = 0
    finally:
        os._exit(status)


def _read_until_eof(fd: int, deadline: float) -> bytes:
    end = time.monotonic() + deadline
    chunks = []
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"child did not finish within {deadline}s")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def errno_as(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """The errno fn raises as the given user, or 0 if it succeeds."""
    try:
        as_user(fn, *args, **kwargs)
    except OSError as exc:
        return exc.errno
    return 0
