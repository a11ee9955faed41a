"""`objfs load`: every kind of entry into a volume on each backend; what it skips and leaves out."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from layout.records import FileType
from objfs.storage import open_store
from tests.commands.loadtrees import (
    MIB,
    ODD_NAME,
    SPARSE_BYTES,
    EveryKind,
    assert_clean,
    bulk,
    every_kind,
    job_query,
    object_sizes,
    objfs_load,
    phase,
    start_load,
    wait_for,
)
from tests.commands.stacks import Leftovers, objfs
from tests.deployment import drop_containers
from tests.storage.backends import azure_url, fresh_container, swift_url
from tests.storage.test_credentials import sas

NOBODY = 65534


@pytest.fixture
def containers() -> Iterator[list[str]]:
    """URLs of the containers a test used, emptied at its end."""
    urls: list[str] = []
    try:
        yield urls
    finally:
        trio.run(drop_containers, urls)


def container_url(backend: str, request: pytest.FixtureRequest, tmp: Path) -> str:
    """A fresh container; on Azure, the account URL and a SAS token for it and nothing else."""
    if backend == "file":
        return f"file://{tmp / 'store'}"
    if backend == "swift":
        return swift_url(request.getfixturevalue("swift_service"), fresh_container())
    info = request.getfixturevalue("azurite_service")
    container = fresh_container()

    async def create() -> None:
        async with open_store(azure_url(info, container)) as owner:
            await owner.ensure_container()

    trio.run(create)
    token = sas(info, container, read=True, write=True, create=True, list=True, delete=True)
    return azure_url(info, container, account_url=info["blob_endpoint"], sas_token=token)


def verify(*args: str | Path) -> subprocess.CompletedProcess:
    return objfs("verify", *map(str, args))


@pytest.mark.parametrize("backend", ["file", "swift", "azure"])
def test_every_kind_of_entry_loads_mounts_and_verifies(
    tmp_path, request, leftovers: Leftovers, containers, backend
):
    src, state, manifest = tmp_path / "src", tmp_path / "state", tmp_path / "manifest.jsonl"
    src.mkdir()
    expected = every_kind(src)
    url = container_url(backend, request, tmp_path)
    containers.append(url)
    if backend == "azure":
        assert "account_key" not in url and "connection_string" not in url

    loaded = objfs_load(src, url, state, "--manifest", str(manifest))
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stderr == ""
    stored = sum(object_sizes(url).values())
    assert stored < 4 * MIB < SPARSE_BYTES, f"{stored} bytes stored: holes were uploaded"
    for expect in ([src], ["--manifest", manifest]):
        found = verify(*expect, url, "--state", state)
        assert found.returncode == 0, found.stdout + found.stderr
    assert_clean(url, "--state", str(state))

    work = tmp_path / "work"
    work.mkdir()
    up = leftovers.up(work, "--url", url, "--state", str(state))
    _check_mount(up.mountpoint, expected)
    found = verify(src, up.mountpoint)
    assert found.returncode == 0, found.stdout + found.stderr
    up.interrupt()


def _check_mount(mnt: Path, expected: EveryKind) -> None:
    """What `objfs verify` does not compare: atimes (before anything is read), one inode."""
    for path, atime in expected.atimes.items():
        assert os.stat(mnt / path, follow_symlinks=False).st_atime_ns == atime, path
    links = [os.stat(mnt / path) for path in expected.hard_links]
    assert {st.st_ino for st in links} == {links[0].st_ino}
    assert [st.st_nlink for st in links] == [len(links)] * len(links)
    assert os.stat(mnt / expected.sparse).st_size == SPARSE_BYTES
    assert ODD_NAME in os.listdir(os.fsencode(mnt))


# The loader run as an unprivileged user. The interpreter lives where only root may
# go, so the process starts as root, imports the loader, and gives up root for good.
AS_USER = """
import os, sys
from objfs.cli import main, parser
import encodings.ascii, objfs.storage.localdir  # what it loads lazily
parser()
uid, gid = int(sys.argv[1]), int(sys.argv[2])
os.setgroups([])
os.setgid(gid)
os.setuid(uid)
sys.exit(main(sys.argv[3:]))
"""


@pytest.fixture
def nobodys_dir() -> Iterator[Path]:
    """A directory the unprivileged user owns, with every parent open to it."""
    path = Path(tempfile.mkdtemp(prefix="objfs-load-", dir="/tmp"))
    try:
        path.chmod(0o755)
        os.chown(path, NOBODY, NOBODY)
        yield path
    finally:
        shutil.rmtree(path)


def _load_as_nobody(src: Path, url: str, state: Path, *extra: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-c", AS_USER, str(NOBODY), str(NOBODY), "load", str(src), url]
    home = src.parent  # not root's: its credentials file is not for this user
    env = {**os.environ, "HOME": str(home), "OBJFS_CREDENTIALS": str(home / "none.toml")}
    return subprocess.run(
        [*argv, "--state", str(state), *extra], capture_output=True, text=True, timeout=120, env=env
    )


def test_unreadable_entries_are_named_and_skipped(nobodys_dir: Path):
    src, state = nobodys_dir / "src", nobodys_dir / "state"
    url, manifest = f"file://{nobodys_dir / 'store'}", nobodys_dir / "manifest.jsonl"
    (src / "closed").mkdir(parents=True)
    (src / "closed" / "inside").write_bytes(b"not listed")
    (src / "readable").write_bytes(b"fine")
    (src / "locked").write_bytes(b"nobody may read this")
    for path in (src, src / "closed", src / "closed" / "inside", src / "readable", src / "locked"):
        os.chown(path, NOBODY, NOBODY)
    (src / "locked").chmod(0)
    (src / "closed").chmod(0)

    first = _load_as_nobody(src, url, state, "--manifest", str(manifest))
    assert first.returncode == 1, first.stderr
    skipped = sorted(first.stderr.splitlines())
    assert skipped == [
        "objfs load: skipped closed: not listed: Permission denied",
        "objfs load: skipped locked: not read: Permission denied",
    ]
    again = _load_as_nobody(src, url, state, "--ignore-errors")
    assert again.returncode == 0, again.stderr
    assert sorted(again.stderr.splitlines()) == skipped
    assert "loaded already" in again.stdout

    found = verify("--manifest", manifest, url, "--state", state)
    assert found.returncode == 0, found.stdout + found.stderr
    found = verify(src, url, "--state", state)  # root reads all: the volume lacks the skipped
    assert found.stdout.splitlines() == ["closed/inside: missing", "locked: missing"], found.stderr
    assert_clean(url, "--state", str(state))


def test_a_file_vanished_before_a_resume_is_named_and_skipped(tmp_path):
    src, state, url = tmp_path / "src", tmp_path / "state", f"file://{tmp_path / 'store'}"
    src.mkdir()
    bulk(src, files=2000, big=6)
    loader = start_load(src, url, state, "--segment-mib", "1")
    try:
        wait_for("the pack phase", lambda: phase(state) in ("pack", "finish", "done"), loader)
    finally:
        loader.send_signal(signal.SIGKILL)
        loader.communicate()
    victim = job_query(
        state,
        f"SELECT path FROM inodes WHERE type = {int(FileType.REGULAR)} AND size > 0 AND "
        "head_object IS NULL AND inode NOT IN (SELECT inode FROM pieces) ORDER BY inode DESC",
    )
    assert isinstance(victim, bytes), "the load was done before it was killed"
    name = os.fsdecode(victim)
    folder = (src / name).parent
    times = os.stat(folder)
    (src / name).unlink()
    os.utime(folder, ns=(times.st_atime_ns, times.st_mtime_ns))  # the scan saw it so

    resumed = objfs_load(src, url, state, "--segment-mib", "1")
    assert resumed.returncode == 1, resumed.stderr
    named = [f"objfs load: skipped {name}: not read: No such file or directory"]
    assert resumed.stderr.splitlines() == named
    manifest = tmp_path / "manifest.jsonl"
    again = objfs_load(src, url, state, "--ignore-errors", "--manifest", str(manifest))
    assert again.returncode == 0, again.stderr
    assert again.stderr.splitlines() == named
    for expect in ([src], ["--manifest", manifest]):
        found = verify(*expect, url, "--state", state)
        assert found.returncode == 0, found.stdout + found.stderr
    assert_clean(url, "--state", str(state))


def test_excluded_paths_are_left_out(tmp_path):
    src, state, url = tmp_path / "src", tmp_path / "state", f"file://{tmp_path / 'store'}"
    for path in ("keep/a", "keep/b.tmp", "skip/c", "skip/deeper/d", "e.tmp", "skipped-not/f"):
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        (src / path).write_text(path)
    manifest = tmp_path / "manifest.jsonl"
    excludes = ["--exclude", "^skip(/|$)", "--exclude", r"\.tmp$"]
    loaded = objfs_load(src, url, state, *excludes, "--manifest", str(manifest))
    assert loaded.returncode == 0, loaded.stderr
    found = verify(src, url, "--state", state)
    left_out = ["e.tmp", "keep/b.tmp", "skip", "skip/c", "skip/deeper", "skip/deeper/d"]
    assert found.stdout.splitlines() == [f"{path}: missing" for path in left_out]
    found = verify("--manifest", manifest, url, "--state", state)
    assert found.returncode == 0, found.stdout + found.stderr
