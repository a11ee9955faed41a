"""`objfs status`: the running stacks, their dirty bytes and checkpoint age, for people and JSON."""

from __future__ import annotations

import json
import os
import time

from objfs import runtime
from tests.commands.stacks import objfs

DIRTY_DEADLINE = 120.0


def _status_json() -> list[dict]:
    result = objfs("status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["mounts"]


def test_status_says_when_nothing_is_mounted():
    result = objfs("status")
    assert result.returncode == 0 and result.stdout.strip() == "no objfs mounts"
    assert _status_json() == []


def test_status_shows_a_mount_with_dirty_bytes_and_checkpoint_age(tmp_path, leftovers):
    url, mountpoint = f"file://{tmp_path / 'vol1'}", tmp_path / "mnt"
    mountpoint.mkdir()
    mounted = objfs("mount", url, str(mountpoint), "--state", str(tmp_path / "state"))
    assert mounted.returncode == 0, mounted.stderr
    entry = leftovers.mounted(mountpoint)

    # Writes wait in the mount's buffer until the next commit (seconds): keep writing until
    # a status catches some of them there.
    deadline = time.monotonic() + DIRTY_DEADLINE
    shown: list[dict] = []
    for i in range(10_000):
        (mountpoint / f"f{i}").write_bytes(os.urandom(1 << 20))
        shown = _status_json()
        if shown and (shown[0]["dirty_bytes"] or 0) > 0 or time.monotonic() > deadline:
            break
    [row] = shown
    assert row["dirty_bytes"] > 0
    assert row["mountpoint"] == str(mountpoint) and row["volume"] == "vol1"
    assert row["url"] == url and row["problems"] == []
    assert isinstance(row["uploads_in_flight"], int)
    assert 0 <= row["checkpoint_age_seconds"] < 3600
    assert row["iclient_status"] == entry.iclient_status and row["imgr_status"]

    table = objfs("status").stdout
    assert str(mountpoint) in table and "vol1" in table and entry.iclient_status in table

    assert objfs("umount", str(mountpoint)).returncode == 0
    assert _status_json() == []


def test_status_drops_entries_of_stacks_that_are_gone(tmp_path):
    dead = runtime.Entry(
        mountpoint=str(tmp_path / "mnt"), volume="v", url="file:///x", pid=2**22 + 1,
        iclient_status="http://127.0.0.1:1/", imgr_status="http://127.0.0.1:1/",
        state=str(tmp_path), started=0.0, pid_started=1,
    )  # fmt: skip
    runtime.write(dead)
    assert runtime.read(dead.mountpoint) is not None
    assert objfs("status").stdout.strip() == "no objfs mounts"
    assert runtime.read(dead.mountpoint) is None
