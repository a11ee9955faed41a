"""`objfs mkfs` and `objfs destroy` as a user runs them, against real stores and a real ickpt."""

from __future__ import annotations

import base64
import os
import pty
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from swiftclient.client import Connection

from ickpt.remote import RemoteStore
from imgr.ownership import checkpoint_key, owner_key
from objfs.commands.common import volume_name
from objfs.storage import open_store
from objfs.storage.urls import redact
from tests import daemons
from tests.deployment import IMGR_BACKENDS, Deployment, deployed
from tests.storage.backends import azure_url, fresh_container, swift_url

OBJFS = daemons.command("objfs")
CREDENTIAL_VARIABLES = ("ST_AUTH", "ST_USER", "ST_KEY", "OS_STORAGE_URL", "OS_AUTH_TOKEN")


@pytest.fixture
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    with deployed(request, tmp_path) as deployment:
        yield deployment


def objfs(*args: str, cwd: Path, **options) -> subprocess.CompletedProcess[str]:
    options.setdefault("stdin", subprocess.DEVNULL)
    argv = [OBJFS, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd, **options)


def mkfs(d: Deployment, url: str) -> subprocess.CompletedProcess[str]:
    return objfs("mkfs", url, "--ickpt", d.ickpt, cwd=d.tmp)


def destroy(d: Deployment, url: str, *flags: str, **options) -> subprocess.CompletedProcess[str]:
    return objfs("destroy", url, "--ickpt", d.ickpt, *flags, cwd=d.tmp, **options)


def one_line(result: subprocess.CompletedProcess[str], verb: str) -> str:
    """The only line on stderr of a refused command, which exited 2."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"objfs {verb}: "), result.stderr
    return lines[0]


def listing(url: str) -> list[str]:
    async def names() -> list[str]:
        async with open_store(url) as store:
            return [info.name async for info in store.list()]

    return trio.run(names)


def put(url: str, name: str, *, if_absent: bool = False) -> None:
    async def store_one() -> None:
        async with open_store(url) as store:
            await store.ensure_container()
            await store.put(name, b"not objfs's", if_absent=if_absent)

    trio.run(store_one)


def records(d: Deployment, name: str) -> list[bytes | None]:
    """The volume's checkpoint and owner records in ickpt (None: absent)."""

    async def get() -> list[bytes | None]:
        async with RemoteStore("127.0.0.1", d.ickpt_port) as ckpt:
            found = [await ckpt.get(key(name)) for key in (checkpoint_key, owner_key)]
        return [f[1] if f else None for f in found]

    return trio.run(get)


def swift_claims(info: dict, container: str) -> list[str]:
    """Claim containers of `container`, asked of Swift directly."""
    conn = Connection(info["auth_url"], info["user"], info["key"], auth_version="1")
    try:
        _, containers = conn.get_account(prefix=f"{container}.objfs-claim.")
    finally:
        conn.close()
    return [c["name"] for c in containers]


@pytest.mark.parametrize("backend", IMGR_BACKENDS)
def test_mkfs_then_destroy_leaves_nothing(deployment, backend):
    url = deployment.volume_url(backend)
    name = volume_name(url)
    made = mkfs(deployment, url)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith(f"formatted volume {name} at {redact(url)}: id ")
    assert made.stderr == ""
    formatted = listing(url)
    assert formatted and records(deployment, name)[0] is not None
    put(url, "created-if-absent", if_absent=True)  # on Swift this takes a claim container
    if backend == "swift":
        assert swift_claims(deployment.request.getfixturevalue("swift_service"), name)

    gone = destroy(deployment, url, "--yes")
    assert gone.returncode == 0, gone.stderr
    deleted = len(formatted) + 1
    claims = " and 1 claim container(s)" if backend == "swift" else ""
    assert gone.stdout == (
        f"destroyed volume {name}: deleted {deleted} object(s){claims}; {redact(url)} is empty\n"
    )
    assert listing(url) == []
    assert records(deployment, name) == [None, None]
    if backend == "swift":
        assert swift_claims(deployment.request.getfixturevalue("swift_service"), name) == []
    assert mkfs(deployment, url).returncode == 0  # the name is free again


def test_destroy_runs_again_on_what_is_left(deployment):
    url = deployment.volume_url("file")
    assert mkfs(deployment, url).returncode == 0
    assert destroy(deployment, url, "--yes").returncode == 0
    put(url, "left-by-a-late-writer")
    again = destroy(deployment, url, "--yes")
    assert again.returncode == 0, again.stderr
    assert "deleted 1 object(s)" in again.stdout
    assert listing(url) == []


def test_destroy_interrupted_then_run_again(deployment):
    url = deployment.volume_url("file")
    assert mkfs(deployment, url).returncode == 0
    directory = Path(url.removeprefix("file://"))
    for i in range(20_000):  # enough that deleting them takes seconds
        (directory / f"filler-{i}").touch()
    total = len(listing(url))
    argv = [OBJFS, "destroy", url, "--ickpt", deployment.ickpt, "--yes"]
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=daemons.interruptible,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(os.listdir(directory)) > total - 100 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
        assert proc.stderr.read() == "objfs destroy: interrupted\n"
    finally:
        daemons.stop(proc)
    assert 0 < len(listing(url)) < total
    again = destroy(deployment, url, "--yes")  # takes its own claim back at once
    assert again.returncode == 0, again.stderr
    assert listing(url) == []
    assert records(deployment, volume_name(url)) == [None, None]


@pytest.mark.parametrize("backend", IMGR_BACKENDS)
def test_mkfs_refuses_a_container_that_holds_anything(deployment, backend):
    url = deployment.volume_url(backend)
    put(url, "someone-elses.txt")
    line = one_line(mkfs(deployment, url), "mkfs")
    assert f"{redact(url)} holds 1 object(s)" in line
    assert listing(url) == ["someone-elses.txt"]
    assert records(deployment, volume_name(url)) == [None, None]


def test_mkfs_refuses_a_name_the_checkpoint_store_holds(deployment):
    first, second = deployment.volume_url("file"), deployment.volume_url("file")
    assert mkfs(deployment, first).returncode == 0
    taken = objfs("mkfs", second, "--ickpt", deployment.ickpt, "--name", volume_name(first),
                  cwd=deployment.tmp)  # fmt: skip
    assert "already holds a volume" in one_line(taken, "mkfs")
    assert listing(second) == []


def test_destroy_without_yes_and_without_a_terminal_deletes_nothing(deployment):
    url = deployment.volume_url("file")
    assert mkfs(deployment, url).returncode == 0
    before = listing(url)
    assert "pass --yes" in one_line(destroy(deployment, url), "destroy")
    assert listing(url) == before
    assert records(deployment, volume_name(url))[0] is not None


@pytest.mark.parametrize("answer, deletes", [("n", False), ("y", True)])
def test_destroy_asks_on_a_terminal(deployment, answer, deletes):
    url = deployment.volume_url("file")
    assert mkfs(deployment, url).returncode == 0
    before = listing(url)
    controller, terminal = pty.openpty()
    try:
        os.write(controller, f"{answer}\n".encode())  # read once it asks
        asked = destroy(deployment, url, stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)
    question = f"delete volume {volume_name(url)} at {redact(url)} ({len(before)} objects)? [y/N] "
    assert asked.stdout.startswith(question)
    if deletes:
        assert asked.returncode == 0, asked.stderr
        assert listing(url) == []
    else:
        assert "not confirmed; nothing deleted" in one_line(asked, "destroy")
        assert listing(url) == before


def test_destroy_refuses_a_volume_an_imgr_serves(deployment):
    url = deployment.volume_url("file")
    name = volume_name(url)
    assert mkfs(deployment, url).returncode == 0
    before = listing(url)
    deployment.start_imgr({name: url})
    line = one_line(destroy(deployment, url, "--yes"), "destroy")
    assert f"volume {name} is served by imgr 'imgr-a'" in line
    assert set(before) <= set(listing(url))  # imgr may have added a checkpoint since
    assert records(deployment, name)[0] is not None


def test_a_checkpoint_log_in_use_is_one_line(deployment):
    # The deployment's ickpt holds tmp/ckpt.log, the log `--state tmp` names.
    url = deployment.volume_url("file")
    refused = objfs("mkfs", url, "--state", str(deployment.tmp), cwd=deployment.tmp)
    line = one_line(refused, "mkfs")
    assert line.endswith("is in use by another process (a running ickpt? pass --ickpt HOST:PORT)")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bad_inputs(request: pytest.FixtureRequest, tmp: Path) -> dict[str, tuple[str, str, dict]]:
    """case -> (url, what the line says, environment)."""
    swift = request.getfixturevalue("swift_service")
    azurite = request.getfixturevalue("azurite_service")
    bare = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
    bare["OBJFS_CREDENTIALS"] = str(tmp / "no-credentials.toml")
    unreachable = f"http://127.0.0.1:{closed_port()}/auth/v1.0"
    wrong_key = base64.b64encode(bytes(64)).decode()  # a key, not the account's
    return {
        "wrong scheme": ("s3://bucket", "unknown storage URL scheme 's3'", {}),
        "unreachable": (
            swift_url(swift, fresh_container(), auth_url=unreachable, user="a:b", key="k"),
            "cannot reach swift://",
            {},
        ),
        "wrong swift key": (
            swift_url(
                swift,
                fresh_container(),
                auth_url=swift["auth_url"],
                user=swift["user"],
                key="wrong",
            ),
            "refused the credentials",
            {},
        ),
        "wrong azure key": (
            azure_url(
                azurite,
                fresh_container(),
                account_url=azurite["blob_endpoint"],
                account_key=wrong_key,
            ),
            "refused the credentials",
            {},
        ),
        "missing credentials": (f"swift://{fresh_container()}", "swift needs credentials", bare),
    }


@pytest.mark.parametrize("verb", ["mkfs", "destroy"])
@pytest.mark.parametrize(
    "case",
    ["wrong scheme", "unreachable", "wrong swift key", "wrong azure key", "missing credentials"],
)
def test_bad_input_is_one_line(deployment, request, verb, case):
    url, says, env = bad_inputs(request, deployment.tmp)[case]
    args = [verb, url, "--ickpt", deployment.ickpt, *(["--yes"] if verb == "destroy" else [])]
    assert says in one_line(objfs(*args, cwd=deployment.tmp, env=env or None), verb)


@pytest.mark.parametrize("verb", ["mkfs", "destroy"])
def test_an_unreachable_ickpt_is_one_line(deployment, verb):
    url = deployment.volume_url("file")
    put(url, "x")  # destroy reaches ickpt only after listing the container
    ickpt = f"127.0.0.1:{closed_port()}"
    args = [verb, url, "--ickpt", ickpt, *(["--yes"] if verb == "destroy" else [])]
    line = one_line(objfs(*args, cwd=deployment.tmp), verb)
    assert line.startswith(f"objfs {verb}: checkpoint store {ickpt}: unavailable")
    assert listing(url) == ["x"]
