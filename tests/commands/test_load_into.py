"""`objfs load --into PATH`: a tree under a path of a served volume, through its imgr."""

from __future__ import annotations

from pathlib import Path

from tests.commands.loadtrees import bulk, every_kind, objfs_load, start_load, wait_for
from tests.commands.stacks import Leftovers, objfs, one_line_error


def test_a_tree_lands_under_a_path_of_a_mounted_volume(tmp_path: Path, leftovers: Leftovers):
    src, work = tmp_path / "src", tmp_path / "work"
    src.mkdir()
    work.mkdir()
    every_kind(src)
    url = f"file://{tmp_path / 'store'}"
    up = leftovers.up(work, "--url", url, "--state", str(tmp_path / "stack"))
    (up.mountpoint / "kept").write_bytes(b"what was there stays")
    state = tmp_path / "job"

    loaded = objfs_load(src, url, state, "--into", "in/here")
    assert loaded.returncode == 0, loaded.stderr
    assert "store:in/here: " in loaded.stdout, loaded.stdout
    found = objfs("verify", str(src), str(up.mountpoint / "in" / "here"))
    assert found.returncode == 0, found.stdout + found.stderr
    assert (up.mountpoint / "kept").read_bytes() == b"what was there stays"

    again = objfs_load(src, url, state, "--into", "in/here")
    assert again.returncode == 0 and "loaded already" in again.stdout, again.stdout
    refused = objfs_load(src, url, state, "--into", "in/here", "--new")
    assert "is not empty" in one_line_error(refused)
    up.interrupt()


def test_an_interrupted_load_into_a_volume_resumes(tmp_path: Path, leftovers: Leftovers):
    src, work = tmp_path / "src", tmp_path / "work"
    bulk(src, files=1500, big=2)
    work.mkdir()
    url = f"file://{tmp_path / 'store'}"
    up = leftovers.up(work, "--url", url, "--state", str(tmp_path / "stack"))
    state = tmp_path / "job"
    target = up.mountpoint / "copy"
    loading = start_load(src, url, state, "--into", "copy")
    wait_for("some entries copied", lambda: len(list(target.rglob("*"))) > 300, loading)
    loading.kill()
    loading.wait()

    finished = objfs_load(src, url, state, "--into", "copy")
    assert finished.returncode == 0, finished.stderr
    found = objfs("verify", str(src), str(target))
    assert found.returncode == 0, found.stdout + found.stderr
    up.interrupt()


def test_into_needs_a_served_volume(tmp_path: Path):
    src = tmp_path / "src"
    src.mkdir()
    url = f"file://{tmp_path / 'store'}"
    refused = objfs_load(src, url, tmp_path / "job", "--into", "x")
    assert "no running objfs stack serves" in one_line_error(refused)
    assert refused.returncode == 2
