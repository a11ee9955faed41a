"""git on the mount: commits, branches, checkouts, gc and a local clone all stay consistent."""

from __future__ import annotations

import os
import random
import stat
from pathlib import Path

import pytest

from tests.programs.helpers import run

SEED = 7


@pytest.fixture
def git(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    # A private HOME and no system config: nothing outside the test is read or written.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.fspath(home),
        "XDG_CONFIG_HOME": os.fspath(home / ".config"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Objfs Test",
        "GIT_AUTHOR_EMAIL": "test@objfs.invalid",
        "GIT_COMMITTER_NAME": "Objfs Test",
        "GIT_COMMITTER_EMAIL": "test@objfs.invalid",
        "LC_ALL": "C",
    }

    def git(*args: str | os.PathLike[str], cwd: Path, stderr: bool = False) -> str:
        result = run(["git", "-c", "init.defaultBranch=main", *args], cwd=cwd, env=env)
        return result.stdout + result.stderr if stderr else result.stdout

    return git


def _tree_on_disk(repo: Path) -> dict[str, tuple[str, bytes | str, bool]]:
    found = {}
    for dirpath, dirnames, filenames in os.walk(repo):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            path = Path(dirpath, name)
            rel = os.fspath(path.relative_to(repo))
            if path.is_symlink():
                found[rel] = ("symlink", os.readlink(path), False)
            else:
                executable = bool(path.stat().st_mode & stat.S_IXUSR)
                found[rel] = ("file", path.read_bytes(), executable)
    return found


def _write(repo: Path, files: dict[str, tuple[bytes, bool]]) -> None:
    for rel, (data, executable) in files.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o755 if executable else 0o644)


def _assert_clean(git, repo: Path) -> None:
    assert git("status", "--porcelain", "--untracked-files=all", cwd=repo) == ""


def _assert_fsck_clean(git, repo: Path) -> None:
    # fsck exits 0 on some problems it only warns about, so its output must be empty too.
    assert git("fsck", "--full", "--strict", "--no-dangling", cwd=repo, stderr=True) == ""


def test_git_branches_checkouts_and_fsck(git, fsroot: Path):
    rng = random.Random(SEED)
    repo = fsroot / "repo"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    # git probes the filesystem at init; a filesystem whose chmod does not stick
    # gets core.filemode=false and executable bits would silently stop being tracked.
    assert git("config", "core.filemode", cwd=repo).strip() == "true"
    symlinks = git("config", "--bool", "--default", "true", "core.symlinks", cwd=repo)
    assert symlinks.strip() == "true"

    main_files = {
        "README": (b"objfs test repository\n", False),
        "run.sh": (b"#!/bin/sh\necho hi\n", True),
        "src/big.bin": (rng.randbytes(3 * 1024 * 1024), False),
        "src/empty": (b"", False),
        "doomed.txt": (b"removed on the branch\n", False),
        **{
            f"src/pkg{i}/mod{j}.py": (rng.randbytes(rng.randint(0, 3000)), False)
            for i in range(5)
            for j in range(20)
        },
    }
    _write(repo, main_files)
    (repo / "link").symlink_to("src/big.bin")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "first", cwd=repo)
    _assert_clean(git, repo)
    main_tree = _tree_on_disk(repo)

    git("checkout", "-q", "-b", "feature", cwd=repo)
    feature_files = dict(main_files)
    feature_files["README"] = (b"changed on feature\n", False)
    feature_files["run.sh"] = (main_files["run.sh"][0], False)  # mode-only change
    big = bytearray(main_files["src/big.bin"][0])
    big[1_000_000:1_000_010] = b"X" * 10  # a small edit inside a large blob
    feature_files["src/big.bin"] = (bytes(big), False)
    feature_files["src/new/deep/file.txt"] = (b"added\n", False)
    del feature_files["doomed.txt"]
    (repo / "doomed.txt").unlink()
    _write(repo, feature_files)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "second", cwd=repo)
    _assert_clean(git, repo)
    feature_tree = _tree_on_disk(repo)
    assert "doomed.txt" not in feature_tree

    # Back and forth: each checkout rewrites, deletes and recreates files and
    # directories, and git trusts the stat data it recorded in the index.
    for _ in range(3):
        git("checkout", "-q", "main", cwd=repo)
        _assert_clean(git, repo)
        assert _tree_on_disk(repo) == main_tree
        assert not (repo / "src/new").exists()
        assert os.readlink(repo / "link") == "src/big.bin"
        git("checkout", "-q", "feature", cwd=repo)
        _assert_clean(git, repo)
        assert _tree_on_disk(repo) == feature_tree

    log = git("log", "--format=%s", "feature", cwd=repo).split()
    assert log == ["second", "first"]
    assert git("log", "--format=%s", "main", cwd=repo).split() == ["first"]
    assert git("diff", "--name-only", "main", "feature", cwd=repo).split() == sorted(
        ["README", "doomed.txt", "run.sh", "src/big.bin", "src/new/deep/file.txt"]
    )

    _assert_fsck_clean(git, repo)

    # gc packs loose objects into mmapped pack files and renames them into place.
    git("gc", "-q", "--prune=now", cwd=repo)
    assert git("count-objects", "-v", cwd=repo).splitlines()[0] == "count: 0"
    _assert_fsck_clean(git, repo)
    _assert_clean(git, repo)

    # A local clone hard-links the object files rather than copying them.
    clone = fsroot / "clone"
    git("clone", "-q", "--branch", "feature", repo, clone, cwd=fsroot)
    packs = list((clone / ".git/objects/pack").glob("*.pack"))
    assert packs and all(p.stat().st_nlink == 2 for p in packs)
    assert _tree_on_disk(clone) == feature_tree
    _assert_fsck_clean(git, clone)
    git("checkout", "-q", "main", cwd=clone)
    assert _tree_on_disk(clone) == main_tree
    _assert_clean(git, clone)
