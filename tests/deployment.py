"""A real ickpt and real imgr daemons over a real object store, for tests that need them.

`deployment` gives a test its own ickpt (file log) and lets it format volumes
and start imgr processes on any backend (file://, swift://, azure://), each
with the mount token that backend expects. Every process is stopped by PID
and every container emptied afterwards, whatever the outcome.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from objfs.commands.tokens import mount_token
from tests import daemons
from tests.storage.backends import azure_url, fresh_container, swift_url

SECRET = "test-mount-secret"
IMGR_BACKENDS = ["file", "swift", "azure"]


@dataclass
class ImgrDaemon:
    proc: subprocess.Popen
    port: int
    http_port: int


@dataclass
class Deployment:
    tmp: Path
    request: pytest.FixtureRequest
    ickpt_port: int = 0
    daemons: list[subprocess.Popen] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    configs: int = 0

    def volume_url(self, backend: str) -> str:
        """A fresh, empty container on `backend`."""
        if backend == "file":
            url = f"file://{self.tmp / fresh_container()}"
        elif backend == "swift":
            url = swift_url(self.request.getfixturevalue("swift_service"), fresh_container())
        else:
            url = azure_url(self.request.getfixturevalue("azurite_service"), fresh_container())
        self.urls.append(url)
        return url

    def token(self, url: str) -> str:
        """The mount token the volume at `url` accepts."""
        return mount_token(url, SECRET)

    def format(self, name: str, url: str, *extra: str) -> subprocess.CompletedProcess:
        argv = [daemons.command("imgr"), "format", name, url, "--ickpt", self.ickpt, *extra]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    @property
    def ickpt(self) -> str:
        return f"127.0.0.1:{self.ickpt_port}"

    def start_imgr(self, volumes: dict[str, str], *flags: str, id: str = "imgr-a") -> ImgrDaemon:
        """`imgr run` serving `volumes` (name -> url) with test-sized timings."""
        self.configs += 1
        config = self.tmp / f"imgr-{self.configs}.toml"
        lines = [f'[volumes."{name}"]\nurl = "{url}"\nsecret = "{SECRET}"\n'
                 for name, url in volumes.items()]  # fmt: skip
        config.write_text("\n".join(lines))
        argv = [
            daemons.command("imgr"), "run", "--config", str(config), "--port", "0",
            "--http-port", "0", "--ickpt", self.ickpt, "--id", id,
            "--checkpoint-interval", "1", "--lease-timeout", "2", "--mount-ttl", "30",
            "--owner-ttl", "10", *flags,
        ]  # fmt: skip
        started = daemons.start(argv, "imgr listening on ")
        self.daemons.append(started.proc)
        words = started.line.split()
        rpc = int(words[3].rstrip(",").rsplit(":", 1)[1])
        http = int(words[-1].rstrip("/").rsplit(":", 1)[1])
        return ImgrDaemon(started.proc, rpc, http)


@contextmanager
def deployed(request: pytest.FixtureRequest, tmp: Path) -> Iterator[Deployment]:
    """A Deployment with its own ickpt; everything stopped and emptied at exit."""
    ickpt = daemons.start(
        [daemons.command("ickpt"), "--port", "0", "--store", f"file://{tmp / 'ckpt.log'}"],
        "ickpt listening on ",
    )
    deployment = Deployment(tmp, request, int(ickpt.line.rsplit(":", 1)[1]))
    try:
        yield deployment
    finally:
        for proc in deployment.daemons:
            daemons.stop(proc)
        daemons.stop(ickpt.proc)
        trio.run(drop_containers, deployment.urls)


async def drop_containers(urls: list[str]) -> None:
    from objfs.storage import open_store

    for url in urls:
        async with open_store(url) as store:
            try:
                async for info in store.list():
                    await store.delete(info.name)
            except Exception:  # a container never created: nothing to drop
                pass
