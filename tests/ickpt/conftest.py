"""Fixtures for the checkpoint store tests: both back ends, and a 3-member etcd cluster."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ickpt.etcdstore import EtcdStore
from ickpt.logstore import LogStore
from ickpt.remote import RemoteStore
from ickpt.store import CheckpointStore
from tests import daemons

CLUSTER_READY_TIMEOUT = 20.0
DAEMON_READY_TIMEOUT = 20.0


@pytest.fixture(params=["log", "etcd", "daemon", "daemon-etcd"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict:
    """A store to test: in-process (log, etcd) or an ickpt daemon over one (daemon*)."""
    if request.param == "log":
        return {"kind": "log", "path": tmp_path / "ckpt.log"}
    if request.param == "daemon":
        port = request.getfixturevalue("ickpt_daemon")(f"file://{tmp_path / 'ckpt.log'}")
        return {"kind": "daemon", "port": port}
    service = request.getfixturevalue("etcd_service")
    prefix = f"test/{uuid.uuid4().hex}/"
    if request.param == "daemon-etcd":
        member = service["endpoint"].removeprefix("http://")
        port = request.getfixturevalue("ickpt_daemon")(f"etcd://{member}/{prefix}")
        return {"kind": "daemon", "port": port}
    return {"kind": "etcd", "endpoints": [service["endpoint"]], "prefix": prefix}


@asynccontextmanager
async def open_store(backend: dict) -> AsyncIterator[CheckpointStore]:
    if backend["kind"] == "log":
        store: CheckpointStore = await LogStore.open(backend["path"])
    elif backend["kind"] == "daemon":
        store = await RemoteStore("127.0.0.1", backend["port"]).__aenter__()
    else:
        store = EtcdStore(backend["endpoints"], prefix=backend["prefix"])
    try:
        yield store
    finally:
        await store.aclose()


@pytest.fixture
async def store(backend: dict) -> AsyncIterator[CheckpointStore]:
    async with open_store(backend) as opened:
        yield opened


# ---------------------------------------------------------------- the ickpt daemon


@dataclass
class Daemon:
    proc: subprocess.Popen
    port: int


def start_daemon(*args: str) -> Daemon:
    """Start `ickpt --port 0 ARGS` and wait (with a deadline) for its listening line."""
    started = daemons.start([daemons.command("ickpt"), "--port", "0", *args], "ickpt listening on ")
    return Daemon(started.proc, int(started.line.rsplit(":", 1)[1]))


stop_daemon = daemons.stop


@pytest.fixture
def ickpt_daemon() -> Iterator[Callable[..., int]]:
    """start(store_url, *flags) -> port of a new daemon; all are stopped after the test."""
    started: list[Daemon] = []

    def start(store_url: str, *flags: str) -> int:
        started.append(start_daemon("--store", store_url, *flags))
        return started[-1].port

    try:
        yield start
    finally:
        for daemon in started:
            stop_daemon(daemon.proc)


# ---------------------------------------------------------------- 3-member etcd cluster


@dataclass
class Cluster:
    endpoints: list[str]
    procs: list[subprocess.Popen] = field(default_factory=list)

    def leader(self) -> int:
        """Index of the member that currently leads (asked of every live member)."""
        for index, endpoint in enumerate(self.endpoints):
            if self.procs[index].poll() is not None:
                continue
            port = int(endpoint.rsplit(":", 1)[1])
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
            try:
                conn.request("POST", "/v3/maintenance/status", body=b"{}")
                status = json.loads(conn.getresponse().read())
            except (OSError, http.client.HTTPException, ValueError):
                continue
            finally:
                conn.close()
            if status.get("leader") and status["leader"] == status["header"]["member_id"]:
                return index
        raise AssertionError("no member says it leads")

    def kill(self, index: int) -> None:
        proc = self.procs[index]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _member_argv(name: str, data: Path, client: int, peer: int, cluster: str) -> list[str]:
    binary = shutil.which("etcd")
    if binary is None:
        pytest.fail("etcd not found on PATH (apt-get install etcd-server)")
    return [
        binary, "--name", name, "--data-dir", str(data),
        "--listen-client-urls", f"http://127.0.0.1:{client}",
        "--advertise-client-urls", f"http://127.0.0.1:{client}",
        "--listen-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-cluster", cluster, "--initial-cluster-state", "new",
        "--initial-cluster-token", data.parent.name,
        "--heartbeat-interval", "25", "--election-timeout", "250",
        "--logger", "zap", "--log-outputs", "stderr",
    ]  # fmt: skip


def _healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", "/health")
        resp = conn.getresponse()
        return resp.status == 200 and json.loads(resp.read()).get("health") == "true"
    except (OSError, http.client.HTTPException, ValueError):
        return False
    finally:
        conn.close()


def _wait_healthy(cluster: Cluster, ports: list[int]) -> None:
    deadline = time.monotonic() + CLUSTER_READY_TIMEOUT
    pending = list(ports)
    while pending:
        for proc in cluster.procs:
            if proc.poll() is not None:
                pytest.fail(f"etcd member exited with {proc.returncode} while starting")
        pending = [p for p in pending if not _healthy(p)]
        if pending and time.monotonic() > deadline:
            pytest.fail(f"etcd cluster not healthy after {CLUSTER_READY_TIMEOUT} s: {pending}")
        time.sleep(0.05)


@pytest.fixture
def etcd_cluster() -> Iterator[Cluster]:
    """Three etcd members on loopback; every process is killed and its data removed."""
    directory = Path(tempfile.mkdtemp(prefix="objfs-etcd3-"))
    ports = _free_ports(6)
    clients, peers = ports[:3], ports[3:]
    initial = ",".join(f"m{i}=http://127.0.0.1:{peers[i]}" for i in range(3))
    cluster = Cluster([f"http://127.0.0.1:{p}" for p in clients])
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
    try:
        for i in range(3):
            argv = _member_argv(f"m{i}", directory / f"m{i}", clients[i], peers[i], initial)
            with open(directory / f"m{i}.log", "wb") as log_file:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                    env=env, start_new_session=True,
                )  # fmt: skip
            cluster.procs.append(proc)
        _wait_healthy(cluster, clients)
        yield cluster
    finally:
        for proc in cluster.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)
