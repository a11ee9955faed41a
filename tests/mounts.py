"""The filesystem under test: a real objfs FUSE mount per backend, shared by a session.

Test modules that want a mount take the `fsroot` fixture (a fresh, empty
directory on the mount, mode 0755, owned by root) and register the fixtures
here in their conftest with `from tests.mounts import *  # noqa: F403`.

A test marked `core` runs on every backend (file, swift, azure); the others
run on file:// only. Which backend a test got is the `backend` parameter.
Each backend's mount is a real ickpt, imgr and iclient, stopped by PID at
the end of the session, and its mountpoint unmounted whatever happened.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import daemons
from tests.deployment import Deployment, ImgrDaemon, deployed

BACKENDS = ["file", "swift", "azure"]
VOLUME = "vol"

__all__ = ["BACKENDS", "objfs_mount", "fsroot", "pytest_generate_tests"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        core = metafunc.definition.get_closest_marker("core") is not None
        metafunc.parametrize("backend", BACKENDS if core else ["file"], scope="session")


@dataclass
class Mounted:
    path: Path
    proc: subprocess.Popen
    http_port: int
    log: Path


@contextmanager
def mountpoint() -> Iterator[Path]:
    """An empty directory every user can reach, unmounted and removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="objfs-mnt-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        subprocess.run(["fusermount3", "-u", "-z", str(path)], capture_output=True, timeout=30)
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def iclient(
    deployment: Deployment, imgr: ImgrDaemon, url: str, path: Path, *flags: str
) -> Iterator[Mounted]:
    """`iclient run` of VOLUME at `path`; stopped by PID (SIGTERM unmounts) at exit."""
    work = Path(tempfile.mkdtemp(prefix="iclient-", dir=deployment.tmp))
    log = work / "iclient.log"
    argv = [
        daemons.command("iclient"), "run", str(path), "--imgr", f"127.0.0.1:{imgr.port}",
        "--volume", VOLUME, "--token", deployment.token(url), "--store", url,
        "--cache-dir", str(work / "cache"), "--http-port", "0", *flags,
    ]  # fmt: skip
    started = daemons.start(argv, "iclient mounted ", log=log)
    http_port = int(started.line.rstrip("/").rsplit(":", 1)[1])
    try:
        yield Mounted(path, started.proc, http_port, log)
    finally:
        if daemons.stop(started.proc) != 0:
            print(f"iclient exited with {started.proc.returncode}; its log ends:")
            print(log.read_text(errors="replace")[-4000:])


def serve_volume(deployment: Deployment, backend: str) -> tuple[str, ImgrDaemon]:
    """A freshly formatted volume on `backend` and an imgr serving it."""
    url = deployment.volume_url(backend)
    formatted = deployment.format(VOLUME, url)
    assert formatted.returncode == 0, formatted.stderr
    return url, deployment.start_imgr({VOLUME: url}, "--lease-timeout", "60")


@pytest.fixture(scope="session")
def objfs_mount(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    with deployed(request, tmp_path_factory.mktemp(f"mount-{backend}")) as deployment:
        url, imgr = serve_volume(deployment, backend)
        with mountpoint() as path, iclient(deployment, imgr, url, path):
            yield path


@pytest.fixture
def fsroot(objfs_mount: Path, backend: str) -> Iterator[Path]:
    root = objfs_mount / f"t-{uuid.uuid4().hex[:12]}"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
