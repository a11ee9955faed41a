"""`objfs mount` / `objfs umount`, and mount(8) through the helper `mount.fuse.objfs`."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from objfs import runtime
from objfs.commands.mountpoints import mounted_type
from tests import daemons
from tests.commands.stacks import (
    BAD_INPUTS,
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

HELPER = Path("/sbin/mount.fuse.objfs")


def test_mount_umount_and_mount_again(tmp_path, leftovers):
    url, state, mountpoint = f"file://{tmp_path / 'store'}", tmp_path / "state", tmp_path / "mnt"
    mountpoint.mkdir()
    mounted = objfs("mount", url, str(mountpoint), "--state", str(state))
    assert mounted.returncode == 0, mounted.stderr
    assert f"mounted at {mountpoint}" in mounted.stdout
    entry = leftovers.mounted(mountpoint)
    written = write_sample(mountpoint)

    unmounted = objfs("umount", str(mountpoint))
    assert unmounted.returncode == 0, unmounted.stderr
    # umount returns once the stack is gone: every write stored, every daemon stopped.
    assert all(gone(pid, timeout=0) for pid in [entry.pid, *entry.pids.values()])
    assert_nothing_left(state, mountpoint)

    again = objfs("mount", url, str(mountpoint), "--state", str(state))
    assert again.returncode == 0, again.stderr
    leftovers.mounted(mountpoint)
    assert tree(mountpoint) == written
    assert objfs("umount", str(mountpoint)).returncode == 0
    assert_nothing_left(state, mountpoint)


@pytest.mark.parametrize("case", BAD_INPUTS)
@pytest.mark.parametrize("verb", ["mount", "helper"])
def test_mount_refuses_bad_input_in_one_line(tmp_path, request, case, verb):
    url, word = bad_url(case, request, tmp_path)
    mountpoint, state = tmp_path / "mnt", tmp_path / "state"
    if case != "no-mountpoint":
        mountpoint.mkdir()
    env = no_credentials_env(tmp_path) if case == "no-credentials" else None
    if verb == "mount":
        result = objfs("mount", url, str(mountpoint), "--state", str(state), env=env)
    else:
        argv = [daemons.command("mount.fuse.objfs"), url, str(mountpoint), "-o", f"state={state}"]
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 32  # mount(8)'s "mount failure"
    assert word in one_line_error(result)
    assert_no_secrets(result.stderr)
    assert_nothing_left(state, mountpoint)


def test_umount_refuses_what_is_not_an_objfs_mount(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    assert "does not exist" in one_line_error(objfs("umount", str(tmp_path / "absent")))
    assert "is not mounted" in one_line_error(objfs("umount", str(plain)))
    subprocess.run(["mount", "-t", "tmpfs", "none", str(plain)], check=True)
    try:
        assert "not an objfs mount (tmpfs)" in one_line_error(objfs("umount", str(plain)))
    finally:
        subprocess.run(["umount", str(plain)], check=True)


@pytest.fixture
def mount_helper() -> Iterator[Path]:
    """/sbin/mount.fuse.objfs installed as README says, removed (or put back) afterwards."""
    before = os.readlink(HELPER) if HELPER.is_symlink() else None
    HELPER.unlink(missing_ok=True)
    HELPER.symlink_to(daemons.command("mount.fuse.objfs"))
    try:
        yield HELPER
    finally:
        HELPER.unlink(missing_ok=True)
        if before is not None:
            HELPER.symlink_to(before)


def _stack_ends_after_plain_umount(mountpoint: Path) -> None:
    entry = runtime.find(str(mountpoint))
    assert entry is not None
    subprocess.run(["umount", str(mountpoint)], check=True, timeout=60)
    assert all(gone(pid) for pid in [entry.pid, *entry.pids.values()])
    assert mounted_type(mountpoint) is None
    assert runtime.running() == []


def test_mount_t_fuse_objfs_and_an_fstab_line(tmp_path, leftovers, mount_helper):
    url, state, mountpoint = f"file://{tmp_path / 'store'}", tmp_path / "state", tmp_path / "mnt"
    mountpoint.mkdir()
    mount = ["mount", "-t", "fuse.objfs", "-o", f"state={state}", url, str(mountpoint)]
    subprocess.run(mount, check=True, capture_output=True, timeout=300)
    leftovers.mounted(mountpoint)
    written = write_sample(mountpoint)
    _stack_ends_after_plain_umount(mountpoint)

    # mount(8)'s own options (_netdev) are dropped; FUSE ones (noexec) reach the mount.
    fstab = tmp_path / "fstab"
    fstab.write_text(f"{url} {mountpoint} fuse.objfs defaults,_netdev,noexec,state={state} 0 0\n")
    subprocess.run(["mount", "-T", str(fstab), str(mountpoint)], check=True, timeout=300)
    leftovers.mounted(mountpoint)
    options = next(line for line in Path("/proc/mounts").read_text().splitlines()
                   if f" {mountpoint} " in line).split()[3]  # fmt: skip
    assert "noexec" in options.split(","), options
    assert tree(mountpoint) == written
    _stack_ends_after_plain_umount(mountpoint)
    assert_nothing_left(state, mountpoint)
