"""`objfs up`: the whole stack in one command, stopped by Ctrl-C, files kept across runs."""

from __future__ import annotations

import os
import signal
import subprocess
import tomllib
from pathlib import Path

import pytest

from objfs import runtime
from objfs.commands.mountpoints import mounted_type
from tests.commands.stacks import (
    BAD_INPUTS,
    TEST_PORTS,
    assert_no_secrets,
    assert_nothing_left,
    bad_url,
    gone,
    no_credentials_env,
    objfs,
    one_line_error,
    tree,
    write_sample,
)
from tests.storage.backends import azure_url, fresh_container, swift_url


def test_up_in_an_empty_dir_keeps_files_across_restarts(tmp_path, leftovers):
    work = tmp_path / "empty"
    work.mkdir()
    first = leftovers.up(work)
    assert first.mountpoint == work / "mnt"
    assert mounted_type(first.mountpoint) == "fuse.objfs"
    written = write_sample(first.mountpoint)
    _secrets_stay_in_private_files(work / ".objfs", first.pids)
    assert "unmounted" in first.interrupt()
    assert all(gone(pid, timeout=0) for pid in first.pids)
    assert list((work / ".objfs" / "run").glob("*")) == []  # the secrets went with the run
    assert mounted_type(first.mountpoint) is None
    assert runtime.running() == []

    second = leftovers.up(work)
    assert tree(second.mountpoint) == written
    second.interrupt()
    assert all(gone(pid, timeout=0) for pid in second.pids)
    assert_nothing_left(work / ".objfs", work / "mnt")


@pytest.mark.parametrize("backend", ["swift", "azure"])
def test_up_mounts_any_backend_url(tmp_path, leftovers, request, backend):
    if backend == "swift":
        url = swift_url(request.getfixturevalue("swift_service"), fresh_container())
    else:
        url = azure_url(request.getfixturevalue("azurite_service"), fresh_container())
    work = tmp_path / "work"
    work.mkdir()
    first = leftovers.up(work, "--url", url)
    written = write_sample(first.mountpoint)
    first.interrupt()
    second = leftovers.up(work, "--url", url)
    assert tree(second.mountpoint) == written
    # `objfs umount` stops an `objfs up` as Ctrl-C does.
    assert objfs("umount", str(second.mountpoint)).returncode == 0
    assert "unmounted" in second.finished()
    assert_nothing_left(work / ".objfs", work / "mnt")


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_up_refuses_bad_input_in_one_line(tmp_path, request, case):
    url, word = bad_url(case, request, tmp_path)
    mountpoint = tmp_path / ("absent/mnt" if case == "no-mountpoint" else "mnt")
    state = tmp_path / "state"
    args = ["up", str(mountpoint), "--url", url, "--state", str(state), *TEST_PORTS]
    result = objfs(*args, env=no_credentials_env(tmp_path) if case == "no-credentials" else None)
    assert word in one_line_error(result)
    assert_no_secrets(result.stderr)
    assert_nothing_left(state, mountpoint)


def test_up_refuses_a_container_whose_checkpoint_is_elsewhere(tmp_path, leftovers):
    (tmp_path / "a").mkdir()
    first = leftovers.up(tmp_path / "a", "--url", f"file://{tmp_path / 'store'}")
    write_sample(first.mountpoint)
    assert "unmounted" in first.interrupt(signal.SIGTERM)
    before = sorted(p.name for p in (tmp_path / "store").iterdir())
    (tmp_path / "b").mkdir()
    result = objfs("up", "--url", f"file://{tmp_path / 'store'}", *TEST_PORTS, cwd=tmp_path / "b")
    assert "holds objects" in one_line_error(result)
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == before
    assert_nothing_left(tmp_path / "b" / ".objfs", tmp_path / "b" / "mnt")


def test_up_refuses_a_mount_point_something_else_mounted(tmp_path):
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "none", str(mountpoint)], check=True)
    try:
        result = objfs("up", str(mountpoint), *TEST_PORTS, cwd=tmp_path)
        assert "already a mount point (tmpfs)" in one_line_error(result)
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)
    assert_nothing_left(tmp_path / ".objfs", mountpoint)


def test_up_detaches_a_dead_mount_left_by_a_crash(tmp_path, leftovers):
    crashed = leftovers.up(tmp_path)
    # Freeze the supervisor so it cannot clean up, then kill everything, the mount's
    # daemon first: the kernel keeps a mount whose daemon is gone (ENOTCONN).
    os.kill(crashed.entry.pid, signal.SIGSTOP)
    for pid in (crashed.entry.pids["iclient"], crashed.entry.pid, *crashed.entry.pids.values()):
        os.kill(pid, signal.SIGKILL)
    assert all(gone(pid) for pid in crashed.pids)
    with pytest.raises(OSError, match="not connected"):
        os.stat(crashed.mountpoint)

    again = leftovers.up(tmp_path)
    assert any("detached a dead objfs mount" in line for line in again.said), again.said
    assert again.mountpoint.is_dir() and mounted_type(again.mountpoint) == "fuse.objfs"
    again.interrupt()
    assert_nothing_left(tmp_path / ".objfs", tmp_path / "mnt")


def test_up_stops_everything_when_a_daemon_dies(tmp_path, leftovers):
    up = leftovers.up(tmp_path)
    os.kill(up.entry.pids["iclient"], signal.SIGKILL)
    up.proc.wait(timeout=120)
    assert up.proc.returncode != 0
    error = up.stderr.read_text().strip().splitlines()
    assert len(error) == 1 and "iclient" in error[0] and "-9" in error[0], error
    assert all(gone(pid) for pid in up.pids)
    assert_nothing_left(tmp_path / ".objfs", tmp_path / "mnt")


def _secrets_stay_in_private_files(state, pids):
    configs = sorted((state / "run").glob("*.toml"))
    assert [c.name for c in configs] == ["iclient.toml", "imgr.toml"]
    assert all(c.stat().st_mode & 0o777 == 0o600 for c in configs)
    secret = tomllib.loads(configs[1].read_text())["volumes"]["store"]["secret"]
    assert len(secret) >= 32
    for pid in pids:
        assert secret not in Path(f"/proc/{pid}/cmdline").read_text()
    logs = {p.name for p in (state / "logs").glob("*.log")}
    assert logs == {"ickpt.log", "imgr.log", "iclient.log", "objfs.log"}


def test_umount_stops_what_a_killed_up_left_running(tmp_path, leftovers):
    up = leftovers.up(tmp_path)
    written = write_sample(up.mountpoint)
    up.proc.kill()
    up.proc.wait()
    # Its daemons run on (in their own process group), the mount still works...
    assert not any(gone(pid, timeout=0) for pid in up.entry.pids.values())
    assert tree(up.mountpoint) == written
    refused = objfs("up", *TEST_PORTS, cwd=tmp_path)
    assert "already a mount point (fuse.objfs)" in one_line_error(refused)
    # ...until `objfs umount` stops them in order, uploads first.
    result = objfs("umount", str(up.mountpoint))
    assert result.returncode == 0, result.stderr
    assert all(gone(pid, timeout=0) for pid in up.pids)
    assert_nothing_left(tmp_path / ".objfs", up.mountpoint)
    again = leftovers.up(tmp_path)
    assert tree(again.mountpoint) == written
    again.interrupt()
