"""etcd (Debian etcd-server 3.4): one member, client and peer URLs on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from common import LOCALHOST, Kind, Options, ProcSpec, ServiceError, Waiter, http_request


class Etcd(Kind):
    name = "etcd"
    port_names = ("client", "peer")
    start_timeout = 30.0

    def prepare(self, directory: Path, state: dict, opts: Options) -> list[ProcSpec]:
        binary = shutil.which("etcd")
        if binary is None:
            raise ServiceError("etcd not found on PATH (apt-get install etcd-server)")
        client = f"http://{LOCALHOST}:{state['ports']['client']}"
        peer = f"http://{LOCALHOST}:{state['ports']['peer']}"
        data = directory / "data"
        data.mkdir(exist_ok=True)
        # etcd also reads ETCD_* variables: a stray one would override these flags.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        argv = [
            binary,
            "--name", "default",
            "--data-dir", str(data),
            "--listen-client-urls", client,
            "--advertise-client-urls", client,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"default={peer}",
            # One member cannot lose an election, so a short timeout is safe; it cuts a
            # restart's wait for leadership from ~2 s to a fraction of a second.
            "--heartbeat-interval", "10",
            "--election-timeout", "100",
            "--logger", "zap",
            "--log-outputs", "stderr",
        ]  # fmt: skip
        return [ProcSpec("etcd", argv, env)]

    def wait_ready(self, state: dict, waiter: Waiter) -> None:
        port = state["ports"]["client"]

        def healthy() -> bool:
            code, _, body = http_request(port, "GET", "/health")
            if code != 200 or json.loads(body).get("health") != "true":
                raise ValueError(f"/health answered {code} {body[:100]!r}")
            return True

        waiter.until("etcd /health", healthy)

    def info(self, state: dict) -> dict:
        return {"kind": "etcd", "endpoint": f"http://{LOCALHOST}:{state['ports']['client']}"}
