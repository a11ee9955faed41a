"""What the tests against real imgr daemons share: HTTP status, polling, mounts, objects.

Waiting is always on a condition with a deadline (`wait_until` polls every
50 ms), never a fixed sleep.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import trio

import imgr.api  # noqa: F401 (registers Expelled, Fenced, NoVolume for the client side)
from imgr.client import ImgrClient, InterruptHandler
from layout.codec import Location
from layout.naming import object_name
from layout.records import Checkpoint, FileType, InodeHead, Superblock
from layout.segment import Segment
from objfs.rpc import ReconnectPolicy
from objfs.storage import open_store
from tests import daemons
from tests.deployment import Deployment, ImgrDaemon

POLL = 0.05
BACKUP = object_name(0)

# A mount of an imgr the test kills: give up on a dead server at once.
ONE_TRY = ReconnectPolicy(attempts=1, connect_timeout=2.0)


async def http_get(daemon: ImgrDaemon, path: str) -> httpx.Response:
    url = f"http://127.0.0.1:{daemon.http_port}{path}"
    return await trio.to_thread.run_sync(lambda: httpx.get(url, timeout=10))


async def status(daemon: ImgrDaemon, path: str) -> Any:
    """The JSON of a status page, which must answer 200."""
    response = await http_get(daemon, path)
    assert response.status_code == 200, (path, response.text)
    return response.json()


async def wait_until(check: Callable[[], Awaitable[Any]], deadline: float, what: str) -> Any:
    """Poll `check` every 50 ms until it returns something true; that value."""
    try:
        with trio.fail_after(deadline):
            while not (found := await check()):
                await trio.sleep(POLL)
            return found
    except trio.TooSlowError:
        raise AssertionError(f"not within {deadline}s: {what}") from None


def mount(
    deployment: Deployment,
    daemon: ImgrDaemon,
    name: str,
    url: str,
    on_interrupt: InterruptHandler | None = None,
    **options: Any,
):
    """ImgrClient.mount of volume `name` with the token its backend accepts."""
    token = deployment.token(url)
    return ImgrClient.mount("127.0.0.1", daemon.port, name, token, on_interrupt, **options)


def formatted(deployment: Deployment, backend: str, name: str = "v1") -> str:
    """A fresh volume on `backend`: its URL."""
    url = deployment.volume_url(backend)
    result = deployment.format(name, url)
    assert result.returncode == 0, result.stderr
    return url


def admin(*argv: str) -> subprocess.CompletedProcess:
    """`imgr VERB ...` (volumes, serve, unserve, format) as a process."""
    return subprocess.run(
        [daemons.command("imgr"), *argv], capture_output=True, text=True, timeout=60
    )


def kill_9(daemon: ImgrDaemon) -> None:
    import signal

    daemons.stop(daemon.proc, signal.SIGKILL)


async def lease_all(client: ImgrClient, inodes: list[int], op: str = "exclusive") -> None:
    """Lease every inode (many RPCs in flight at once)."""
    limiter = trio.CapacityLimiter(64)

    async def one(inode: int) -> None:
        async with limiter:
            assert await client.lease(inode, op) == op

    async with trio.open_nursery() as nursery:
        for inode in inodes:
            nursery.start_soon(one, inode)


def head(inode: int, accounting: dict[int, int] | None = None) -> InodeHead:
    """A real inode head: a regular file, with payload bytes in `accounting`."""
    now = time.time_ns()
    return InodeHead(
        inode=inode,
        type=FileType.REGULAR,
        mode=0o644,
        uid=os.getuid(),
        gid=os.getgid(),
        atime_ns=now,
        mtime_ns=now,
        ctime_ns=now,
        btime_ns=now,
        links=((1, f"f{inode}".encode()),),
        accounting=dict(accounting or {}),
    )


async def write_heads(
    url: str, number: int, heads: list[InodeHead]
) -> tuple[dict[int, Location], int]:
    """Object `number` holding `heads`, stored: (inode -> its head's Location, object size)."""
    segment = Segment(number)
    where = {h.inode: segment.append(h.encode()) for h in heads}
    await put_object(url, number, segment.data)
    return where, len(segment)


async def put_object(url: str, number: int, data: bytes) -> None:
    async with open_store(url) as store:
        await store.put(object_name(number), data)


async def object_names(url: str) -> set[str]:
    async with open_store(url) as store:
        return {info.name async for info in store.list()}


async def newest_checkpoint(url: str) -> tuple[Checkpoint, Superblock]:
    """The checkpoint backed up in object 0 and the superblock it names."""
    async with open_store(url) as store:
        record = Checkpoint.decode(await store.get(BACKUP), "object 0")
        sb = record.superblock
        data = await store.get(object_name(sb.object), sb.offset, sb.length)
    return record, Superblock.decode(data, f"superblock in {sb}")
