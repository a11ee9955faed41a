"""The service scripts against the real servers: start, use, refuse, stop, restart."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from email.utils import formatdate
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests import services

# Bypass any http_proxy in the environment: everything here is on 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
HTTP_TIMEOUT = 30


def http(
    method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with OPENER.open(request, timeout=HTTP_TIMEOUT) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"  # zombies are dead, just not reaped


# ---------------------------------------------------------------- clients


def swift_auth(info: dict) -> tuple[str, str]:
    headers = {"X-Auth-User": info["user"], "X-Auth-Key": info["key"]}
    status, resp_headers, _ = http("GET", info["auth_url"], headers)
    assert status == 200
    return resp_headers["X-Auth-Token"], resp_headers["X-Storage-Url"]


def swift_put(info: dict, container: str, name: str, data: bytes) -> None:
    token, url = swift_auth(info)
    assert http("PUT", f"{url}/{container}", {"X-Auth-Token": token}, b"")[0] in (201, 202)
    assert http("PUT", f"{url}/{container}/{name}", {"X-Auth-Token": token}, data)[0] == 201


def swift_get(info: dict, container: str, name: str) -> bytes | None:
    token, url = swift_auth(info)
    status, _, body = http("GET", f"{url}/{container}/{name}", {"X-Auth-Token": token})
    assert status in (200, 404)
    return body if status == 200 else None


def etcd_call(info: dict, api: str, payload: dict) -> dict:
    body = json.dumps(payload).encode()
    status, _, resp = http("POST", f"{info['endpoint']}/v3/kv/{api}", {}, body)
    assert status == 200, resp
    return json.loads(resp)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def etcd_put(info: dict, key: bytes, value: bytes) -> None:
    etcd_call(info, "put", {"key": b64(key), "value": b64(value)})


def etcd_get(info: dict, key: bytes) -> bytes | None:
    kvs = etcd_call(info, "range", {"key": b64(key)}).get("kvs", [])
    return base64.b64decode(kvs[0]["value"]) if kvs else None


def azurite_request(info: dict, method: str, path: str, query: dict[str, str]) -> tuple[int, bytes]:
    """A SharedKey-signed blob request, proving the key in service.json is the right one."""
    account, endpoint = info["account_name"], urlsplit(info["blob_endpoint"])
    url_path = endpoint.path + path
    headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": "2021-08-06"}
    canonical = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
    resource = f"/{account}{url_path}" + "".join(f"\n{k}:{v}" for k, v in sorted(query.items()))
    # urllib adds a Content-Type to any request with a body, so it must be signed too.
    content_type = "application/octet-stream" if method == "PUT" else ""
    # VERB, then eleven standard headers of which only Content-Type (the fifth) is set.
    standard = ["", "", "", "", content_type] + [""] * 6
    to_sign = "\n".join([method, *standard]) + "\n" + canonical + resource
    key = base64.b64decode(info["account_key"])
    signature = b64(hmac.new(key, to_sign.encode(), hashlib.sha256).digest())
    headers["Authorization"] = f"SharedKey {account}:{signature}"
    if content_type:
        headers["Content-Type"] = content_type
    query_string = "&".join(f"{k}={v}" for k, v in query.items())
    url = f"{endpoint.scheme}://{endpoint.netloc}{url_path}?{query_string}"
    status, _, body = http(method, url, headers, b"" if method == "PUT" else None)
    return status, body


def azurite_create_container(info: dict, name: str) -> None:
    assert azurite_request(info, "PUT", f"/{name}", {"restype": "container"})[0] == 201


def azurite_has_container(info: dict, name: str) -> bool:
    status, body = azurite_request(info, "GET", "", {"comp": "list"})
    assert status == 200, body
    return f"<Name>{name}</Name>".encode() in body


# Per kind: store a marker in the service, and tell whether it is still there.
MARKER = "marker-" + uuid.uuid4().hex[:8]
ROUNDTRIP: dict[str, tuple[Callable[[dict], None], Callable[[dict], bool]]] = {
    "swift": (
        lambda info: swift_put(info, "c", MARKER, MARKER.encode()),
        lambda info: swift_get(info, "c", MARKER) == MARKER.encode(),
    ),
    "azurite": (
        lambda info: azurite_create_container(info, MARKER),
        lambda info: azurite_has_container(info, MARKER),
    ),
    "etcd": (
        lambda info: etcd_put(info, MARKER.encode(), b"v"),
        lambda info: etcd_get(info, MARKER.encode()) == b"v",
    ),
}


# ---------------------------------------------------------------- session services


def test_swift_put_get(swift_service: dict) -> None:
    _, url = swift_auth(swift_service)
    assert url == swift_service["storage_url"]
    data = os.urandom(65536)
    swift_put(swift_service, "fixture", "obj", data)
    assert swift_get(swift_service, "fixture", "obj") == data
    assert swift_get(swift_service, "fixture", "absent") is None


def test_azurite_answers(azurite_service: dict) -> None:
    status, _, _ = http("GET", azurite_service["blob_endpoint"] + "?comp=list")
    assert 200 <= status < 600  # unsigned: any HTTP answer means it is serving
    endpoint = azurite_service["blob_endpoint"]
    assert f"BlobEndpoint={endpoint};" in azurite_service["connection_string"]
    azurite_create_container(azurite_service, "fixture")
    assert azurite_has_container(azurite_service, "fixture")


def test_etcd_put_range(etcd_service: dict) -> None:
    etcd_put(etcd_service, b"fixture/key", b"\x00value")
    assert etcd_get(etcd_service, b"fixture/key") == b"\x00value"
    assert etcd_get(etcd_service, b"fixture/absent") is None


# ---------------------------------------------------------------- lifecycle


def pids_of(directory: Path) -> list[int]:
    return [int(path.read_text()) for path in directory.glob("*.pid")]


@pytest.mark.parametrize("kind", ["swift", "azurite", "etcd"])
def test_lifecycle(kind: str, dedicated_service: Callable[[str], tuple[dict, Path]]) -> None:
    write, present = ROUNDTRIP[kind]
    info, directory = dedicated_service(kind)
    assert json.loads((directory / "service.json").read_text()) == info
    assert services.run(kind, "status", directory).returncode == 0
    write(info)
    assert present(info)

    again = services.run(kind, "start", directory)
    assert again.returncode != 0
    assert "already running" in again.stderr and len(again.stderr.splitlines()) == 1

    pids = pids_of(directory)
    assert pids and all(pid_alive(pid) for pid in pids)
    services.stop(kind, directory)
    assert not [pid for pid in pids if pid_alive(pid)]
    assert not pids_of(directory)
    assert services.run(kind, "status", directory).returncode == 3
    services.stop(kind, directory)  # stopping a stopped instance is fine

    assert services.start(kind, directory) == info  # same ports
    assert present(info)  # same data
    services.stop(kind, directory)
    services.stop(kind, directory)


def test_status_of_unknown_dir(tmp_path: Path) -> None:
    result = services.run("etcd", "status", tmp_path / "never-started")
    assert result.returncode == 3
    assert json.loads(result.stdout)["running"] is False


def test_restart_on_taken_port_fails_cleanly(
    dedicated_service: Callable[[str], tuple[dict, Path]],
) -> None:
    info, directory = dedicated_service("etcd")
    services.stop("etcd", directory)
    port = urlsplit(info["endpoint"]).port
    with socket.create_server(("127.0.0.1", port)):
        result = services.run("etcd", "start", directory)
    assert result.returncode != 0
    assert f"port {port}" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not pids_of(directory)
    assert services.start("etcd", directory) == info


def test_missing_azurite_binary(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-azurite"
    result = services.run("azurite", "start", tmp_path / "az", "--azurite-bin", str(missing))
    assert result.returncode != 0
    assert str(missing) in result.stderr and len(result.stderr.splitlines()) == 1


def test_failed_readiness_kills_and_shows_log(tmp_path: Path) -> None:
    # A fake azurite that runs but never listens: start must time out and clean up.
    pid_file = tmp_path / "fake.pid"
    fake = tmp_path / "fake-azurite"
    fake.write_text(
        f'#!/bin/sh\necho "fake azurite says hi"\necho $$ > {pid_file}\nexec sleep 300\n'
    )
    fake.chmod(0o755)
    directory = tmp_path / "az"
    try:
        result = services.run(
            "azurite", "start", directory, "--azurite-bin", str(fake), "--timeout", "2"
        )
        assert result.returncode != 0
        assert "not ready after 2 s" in result.stderr
        assert "fake azurite says hi" in result.stderr  # the log tail
        pid = int(pid_file.read_text())
        assert not pid_alive(pid)
        assert not pids_of(directory)
        assert not (directory / "state.json").exists()  # next start picks new ports
    finally:
        if pid_file.exists() and pid_alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
