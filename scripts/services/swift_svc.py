"""OpenStack Swift (Debian 2.30 packages): memcached, proxy with tempauth, and one
account, container and object server sharing a single device on tmpfs."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from common import (
    LOCALHOST,
    Kind,
    Options,
    ProcSpec,
    ServiceError,
    Waiter,
    answers_http,
    http_request,
)

SYSTEM_PYTHON = "/usr/bin/python3"
SHM = Path("/dev/shm")
DEVICE = "d0"
USER, KEY, ACCOUNT = "test:tester", "testing", "AUTH_test"
BACKENDS = ("account", "container", "object")
SERVERS = ("proxy", *BACKENDS)
# Single-process servers: for 8 parallel 64 KiB PUTs on 2 cores, workers = 2 was not clearly
# faster (-10 % to +20 %, within noise) and costs three times the processes and memory.
WORKERS = 0

COMMON_CONF = """\
[DEFAULT]
bind_ip = {ip}
bind_port = {port}
workers = {workers}
user = {user}
swift_dir = {swift_dir}
devices = {devices}
mount_check = false
log_name = {name}-server

[pipeline:main]
pipeline = {pipeline}
"""

# Per-request access lines stay in the proxy log only; backends log warnings and errors.
BACKEND_APP = """
[app:{name}-server]
use = egg:swift#{name}
log_requests = false
conn_timeout = 5
node_timeout = 30
"""

# Without the updater daemon a container update that times out would never reach the
# listing, so the object server waits for it much longer than its 1 s default.
OBJECT_EXTRA = "container_update_timeout = 30\n"

PROXY_PIPELINE = (
    "catch_errors gatekeeper healthcheck proxy-logging cache listing_formats tempauth "
    "copy slo dlo versioned_writes symlink proxy-logging proxy-server"
)
# versioned_writes is listed because the proxy inserts it anyway, with a warning.
PROXY_FILTERS = (
    "catch_errors", "gatekeeper", "healthcheck", "listing_formats",
    "copy", "slo", "dlo", "versioned_writes", "symlink",
)  # fmt: skip

PROXY_APP = """
[app:proxy-server]
use = egg:swift#proxy
# Creates AUTH_test on its first container PUT instead of answering 404.
account_autocreate = true
# With one node per ring, the default 60 s error suppression would turn a single
# failure into a minute of 503s.
error_suppression_interval = 0
# Single-process backends on a busy 2-core machine can stall for seconds; the defaults
# (0.5 s connect, 10 s read) would turn such stalls into 503s in the tests.
conn_timeout = 3
node_timeout = 30

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache
memcache_servers = {ip}:{memcached}

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = {key} .admin
"""

RING_BUILDER = """
import sys
from swift.common.ring import RingBuilder
swift_dir, ip, device = sys.argv[1:4]
for spec in sys.argv[4:]:
    name, port = spec.split("=")
    builder = RingBuilder(8, 1, 1)
    builder.add_dev({"region": 1, "zone": 1, "ip": ip, "port": int(port),
                     "device": device, "weight": 100})
    builder.rebalance()
    builder.save(f"{swift_dir}/{name}.builder")
    builder.get_ring().save(f"{swift_dir}/{name}.ring.gz")
"""


def swift_env() -> dict[str, str]:
    # A venv or pyenv must not leak into the system python that Swift needs.
    drop = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if k not in drop}


class Swift(Kind):
    name = "swift"
    port_names = ("memcached", "proxy", *BACKENDS)
    start_timeout = 60.0

    def new_state(self, directory: Path, opts: Options) -> dict:
        # Object metadata lives in xattrs; tmpfs takes large ones where ext4 refuses (507).
        if not SHM.is_dir():
            raise ServiceError(f"{SHM} is missing: Swift devices need a tmpfs")
        return {"devices": tempfile.mkdtemp(prefix="objfs-swift-", dir=SHM)}

    def prepare(self, directory: Path, state: dict, opts: Options) -> list[ProcSpec]:
        memcached = _require_binaries()
        conf = directory / "conf"
        conf.mkdir(exist_ok=True)
        (Path(state["devices"]) / DEVICE).mkdir(parents=True, exist_ok=True)
        self._write_confs(conf, state)
        if not all((conf / f"{name}.ring.gz").exists() for name in BACKENDS):
            self._build_rings(conf, state["ports"])
        mc_argv = [memcached, "-l", LOCALHOST, "-U", "0", "-p", str(state["ports"]["memcached"])]
        if os.geteuid() == 0:
            mc_argv += ["-u", "root"]  # memcached refuses to run as root without it
        specs = [ProcSpec("memcached", mc_argv)]
        for name in SERVERS:
            server = f"/usr/bin/swift-{name}-server"
            # -s: no user site-packages; -v: log to stderr (the .log file), not only syslog.
            argv = [SYSTEM_PYTHON, "-s", server, str(conf / f"{name}-server.conf"), "-v"]
            specs.append(ProcSpec(f"swift-{name}", argv, swift_env()))
        return specs

    def _write_confs(self, conf: Path, state: dict) -> None:
        ports = state["ports"]
        for name in BACKENDS:
            text = _common_conf(conf, state, name, f"{name}-server")
            text += BACKEND_APP.format(name=name)
            if name == "object":
                text += OBJECT_EXTRA
            (conf / f"{name}-server.conf").write_text(text)
        text = _common_conf(conf, state, "proxy", PROXY_PIPELINE)
        text += PROXY_APP.format(ip=LOCALHOST, memcached=ports["memcached"], key=KEY)
        for name in PROXY_FILTERS:
            text += f"\n[filter:{name}]\nuse = egg:swift#{name}\n"
        (conf / "proxy-server.conf").write_text(text)

    def _build_rings(self, conf: Path, ports: dict[str, int]) -> None:
        # One interpreter for all three rings: ~0.5 s instead of ~4 s of swift-ring-builder.
        args = [f"{name}={ports[name]}" for name in BACKENDS]
        argv = [SYSTEM_PYTHON, "-s", "-c", RING_BUILDER, str(conf), LOCALHOST, DEVICE, *args]
        result = subprocess.run(
            argv, env=swift_env(), cwd=conf, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise ServiceError(f"ring build failed: {last}")

    def wait_ready(self, state: dict, waiter: Waiter) -> None:
        ports = state["ports"]
        waiter.until("memcached", lambda: _memcached_answers(ports["memcached"]))
        for name in BACKENDS:
            waiter.until(f"{name} server", lambda port=ports[name]: answers_http(port))
        token = waiter.until("tempauth token", lambda: _auth_token(ports["proxy"]))
        waiter.until("account HEAD", lambda: _account_head(ports["proxy"], str(token)))

    def info(self, state: dict) -> dict:
        port = state["ports"]["proxy"]
        return {
            "kind": "swift",
            "auth_url": f"http://{LOCALHOST}:{port}/auth/v1.0",
            "user": USER,
            "key": KEY,
            "storage_url": f"http://{LOCALHOST}:{port}/v1/{ACCOUNT}",
            "proxy_port": port,
        }

    def purge(self, directory: Path, state: dict) -> None:
        devices = state.get("devices")
        # Only ever delete a directory this script created under /dev/shm.
        if devices and Path(devices).parent == SHM and Path(devices).name.startswith("objfs-"):
            shutil.rmtree(devices, ignore_errors=True)


def _require_binaries() -> str:
    """Check the Debian packages are there; return the memcached path."""
    for path in (SYSTEM_PYTHON, *(f"/usr/bin/swift-{name}-server" for name in SERVERS)):
        if not os.access(path, os.X_OK):
            raise ServiceError(f"{path} missing (apt-get install swift-proxy swift-account ...)")
    memcached = shutil.which("memcached")
    if memcached is None:
        raise ServiceError("memcached not found on PATH (apt-get install memcached)")
    return memcached


def _common_conf(conf: Path, state: dict, name: str, pipeline: str) -> str:
    return COMMON_CONF.format(
        ip=LOCALHOST,
        port=state["ports"][name],
        workers=WORKERS,
        user=pwd.getpwuid(os.geteuid()).pw_name,
        swift_dir=conf,
        devices=state["devices"],
        name=name,
        pipeline=pipeline,
    )


def _memcached_answers(port: int) -> bool:
    with socket.create_connection((LOCALHOST, port), timeout=2) as sock:
        sock.sendall(b"version\r\n")
        if not sock.recv(64).startswith(b"VERSION"):
            raise ValueError("unexpected memcached answer")
    return True


def _auth_token(port: int) -> str:
    code, headers, _ = http_request(
        port, "GET", "/auth/v1.0", {"X-Auth-User": USER, "X-Auth-Key": KEY}
    )
    token = headers.get("X-Auth-Token")
    if code != 200 or not token:
        raise ValueError(f"auth answered {code}")
    return token


def _account_head(port: int, token: str) -> bool:
    code, _, _ = http_request(port, "HEAD", f"/v1/{ACCOUNT}", {"X-Auth-Token": token})
    if not 200 <= code < 300:
        raise ValueError(f"account HEAD answered {code}")
    return True
