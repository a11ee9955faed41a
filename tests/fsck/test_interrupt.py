"""fsck --repair interrupted (SIGINT) at its steps: each later run goes on, and ends clean."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time

import trio

from ickpt.remote import RemoteStore
from imgr import ownership
from tests import daemons
from tests.deployment import deployed
from tests.fsck.helpers import container_dir, mounted, objfs, segments, unused_name, volume_at_rest
from tests.fsck.test_fsck import _unlink_without_the_inode
from tests.mounts import VOLUME

POLL = 0.01
DEADLINE = 120.0


def _repair(deployment, url) -> subprocess.Popen:
    argv = [daemons.command("objfs"), "fsck", url, "--repair", "--ickpt", deployment.ickpt,
            "--name", VOLUME]  # fmt: skip
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=daemons.interruptible,
    )  # fmt: skip


def _interrupt_when(proc: subprocess.Popen, condition) -> tuple[int, str]:
    """SIGINT `proc` once `condition()` holds (unless it ended first); its exit code, stderr."""
    deadline = time.monotonic() + DEADLINE
    while proc.poll() is None and not condition():
        assert time.monotonic() < deadline, "neither the condition nor the end came"
        time.sleep(POLL)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        _, stderr = proc.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()  # a failing test leaves no process behind
        proc.communicate()
        raise
    return proc.returncode, stderr


async def _claimed(ickpt: str) -> bool:
    host, port = ickpt.split(":")
    async with RemoteStore(host, int(port)) as ckpt:
        return await ckpt.get(ownership.owner_key(VOLUME)) is not None


def test_repair_interrupted_at_each_step_is_finished_by_the_next_run(request, tmp_path):
    with (
        deployed(request, tmp_path) as deployment,
        volume_at_rest(deployment, "file") as (
            url,
            expected,
        ),
    ):
        container = container_dir(url)
        orphan = container / unused_name(url)
        shutil.copyfile(segments(url)[0], orphan)
        [lost] = trio.run(_unlink_without_the_inode, url, deployment.ickpt, [b"renamed"])
        before = {p.name for p in container.iterdir()}

        steps = [
            lambda: trio.run(_claimed, deployment.ickpt),  # owning it, before any change
            lambda: not orphan.exists(),  # the orphan deleted, the lost inode maybe not moved
            lambda: bool({p.name for p in container.iterdir()} - before),  # a segment stored
        ]
        for step in steps:
            code, stderr = _interrupt_when(_repair(deployment, url), step)
            # Never refused (2): each interrupted run gave its claim up. A signal that
            # lands as the process exits kills it (-SIGINT) once it has nothing left to do.
            assert code in (0, 1, 130, -signal.SIGINT), stderr
            assert code != 130 or stderr.strip() == "objfs fsck: interrupted", stderr

        last = objfs(deployment, "fsck", url, "--repair")
        assert last.returncode in (0, 1), last.stdout + last.stderr
        done = objfs(deployment, "fsck", url)
        assert done.returncode == 0, done.stdout + done.stderr
        assert not orphan.exists()
        imgr = deployment.start_imgr({VOLUME: url}, "--lease-timeout", "60")
        with mounted(deployment, imgr, url) as path:
            moved = path / "lost+found" / f"#{lost}"
            assert moved.read_bytes() == (expected / "renamed").read_bytes()
