"""`objfs load` refuses bad input in one line, with a non-zero exit, having uploaded nothing."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import trio

from tests.commands.loadtrees import bulk, object_sizes, objfs_load, phase, start_load, wait_for
from tests.commands.stacks import assert_no_secrets, bad_url, one_line_error
from tests.deployment import drop_containers
from tests.storage.backends import azure_url, swift_url


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "file").write_text("a file\n")
    return root


def refused(src: Path, url: str, state: Path, *extra: str) -> str:
    """The one line a refused load says; asserts exit 2 and no job left in `state`."""
    result = objfs_load(src, url, state, *extra)
    line = one_line_error(result)
    assert result.returncode == 2, result.stderr
    assert_no_secrets(result.stderr)
    assert not (state / "load.db").exists()
    return line


def test_a_missing_source(tmp_path, src):
    store = tmp_path / "store"
    line = refused(src / "absent", f"file://{store}", tmp_path / "state")
    assert "absent: no such directory" in line
    assert not store.exists()


@pytest.mark.parametrize("option", [("--segment-mib", "0"), ("--exclude", "(unclosed")])
def test_bad_options(tmp_path, src, option):
    store = tmp_path / "store"
    line = refused(src, f"file://{store}", tmp_path / "state", *option)
    assert option[0] in line
    assert not store.exists()


def test_an_unreachable_url(tmp_path, src):
    url, _ = bad_url("unreachable", None, tmp_path)
    assert "cannot reach" in refused(src, url, tmp_path / "state")


@pytest.mark.parametrize("case", ["swift-key", "azure-key"])
def test_wrong_credentials(tmp_path, src, request, case):
    url, word = bad_url(case, request, tmp_path)
    container = url.split("://", 1)[1].split("?", 1)[0]
    if case == "swift-key":
        good = swift_url(request.getfixturevalue("swift_service"), container)
    else:
        good = azure_url(request.getfixturevalue("azurite_service"), container)
    try:
        assert word in refused(src, url, tmp_path / "state")
        assert object_sizes(good) == {}
    finally:
        trio.run(drop_containers, [good])


def test_a_state_dir_of_another_unfinished_job(tmp_path, src):
    other, state = tmp_path / "other", tmp_path / "state"
    other.mkdir()
    bulk(other, files=1000, big=6)
    loader = start_load(other, f"file://{tmp_path / 'other-store'}", state, "--segment-mib", "1")
    try:
        wait_for("the pack phase", lambda: phase(state) == "pack", loader)
    finally:
        loader.send_signal(signal.SIGKILL)
        loader.communicate()
    assert phase(state) == "pack", "the other load was done before it was cut short"
    store = tmp_path / "store"
    result = objfs_load(src, f"file://{store}", state)
    line = one_line_error(result)
    assert result.returncode == 2
    assert "unfinished" in line and str(other) in line and "--new" in line
    assert not store.exists()
    assert phase(state) == "pack"  # the other job is kept

    # --new abandons it: the same command loads this tree instead.
    assert objfs_load(src, f"file://{store}", state, "--new").returncode == 0
    assert phase(state) == "done"


def test_a_container_that_holds_a_volume(tmp_path, src):
    url = f"file://{tmp_path / 'store'}"
    assert objfs_load(src, url, tmp_path / "first").returncode == 0
    before = object_sizes(url)
    result = objfs_load(src, url, tmp_path / "second")
    assert "exists" in one_line_error(result)
    assert result.returncode == 2
    assert object_sizes(url) == before
