"""The daemons a benchmark starts: ready when they print their first line, stopped by PID."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

READY_SECONDS = 60.0  # a daemon must say it listens within this
STOP_SECONDS = 60.0  # SIGTERM, then SIGKILL after this (imgr writes a last checkpoint)


def stop(proc: subprocess.Popen, name: str) -> None:
    """SIGTERM, wait up to STOP_SECONDS, then SIGKILL; complain unless it exited 0."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            print(f"bench: {name} (pid {proc.pid}) ignored SIGTERM; killing", file=sys.stderr)
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()
    if proc.returncode != 0:
        print(f"bench: {name} (pid {proc.pid}) exited {proc.returncode}", file=sys.stderr)


def start(
    stack: ExitStack, name: str, argv: list[str], prefix: str, stderr_path: str
) -> tuple[subprocess.Popen, str]:
    """Start argv, stopped by PID when `stack` closes; its first line, which starts `prefix`.

    RuntimeError, with the end of its stderr, if it does not say so in time.
    """
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr
        )
    stack.callback(stop, proc, name)
    text = _first_line(proc)
    if not text.startswith(prefix):
        with open(stderr_path, errors="replace") as f:
            log = f.read()[-4000:]
        raise RuntimeError(f"{name} did not start (stdout {text!r}, exit {proc.poll()}):\n{log}")
    return proc, text


def _first_line(proc: subprocess.Popen) -> str:
    line = b""
    deadline = time.monotonic() + READY_SECONDS
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([proc.stdout], [], [], remaining)[0]:
            break
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        line += chunk
    return line.decode(errors="replace").strip()


@contextmanager
def objfs_mount(url: str, mountpoint: Path, workdir: Path) -> Iterator[int]:
    """ickpt, imgr and an iclient mounting the volume at `url`; yields iclient's PID.

    The volume is formatted on first use and mounted again as it is when the
    same `url` and `workdir` come back (a remount for cold reads).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    secret = "bench-secret"
    with ExitStack() as stack:
        ickpt_argv = [_script("ickpt"), "--port", "0", "--store", f"file://{workdir / 'ckpt.log'}"]
        _, line = start(
            stack, "ickpt", ickpt_argv, "ickpt listening on ", str(workdir / "ickpt.log")
        )
        ickpt = line.rsplit(" ", 1)[1]
        formatted = subprocess.run(
            [_script("imgr"), "format", "vol", url, "--ickpt", ickpt],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if formatted.returncode != 0 and "use --force" not in formatted.stderr:
            raise RuntimeError(f"imgr format failed: {formatted.stderr.strip()}")
        config = workdir / "imgr.toml"
        config.write_text(f'[volumes.vol]\nurl = "{url}"\nsecret = "{secret}"\n')
        imgr_argv = [_script("imgr"), "run", "--config", str(config), "--port", "0",
                     "--http-port", "0", "--ickpt", ickpt, "--id", "bench"]  # fmt: skip
        _, line = start(stack, "imgr", imgr_argv, "imgr listening on ", str(workdir / "imgr.log"))
        imgr = line.split()[3].rstrip(",")
        client_argv = [_script("iclient"), "run", str(mountpoint), "--imgr", imgr,
                       "--volume", "vol", "--token", _token(url, secret), "--store", url,
                       "--cache-dir", str(workdir / "cache"), "--http-port", "0"]  # fmt: skip
        proc, _ = start(
            stack, "iclient", client_argv, "iclient mounted ", str(workdir / "iclient.log")
        )
        yield proc.pid


def _script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _token(url: str, secret: str) -> str:
    """The mount token imgr expects: a Swift token for swift://, the secret otherwise."""
    if not url.startswith("swift://"):
        return secret
    from swiftclient.client import get_auth

    params = parse_qs(urlsplit(url).query)
    auth = get_auth(params["auth_url"][0], params["user"][0], params["key"][0], auth_version="1")
    return auth[1]
