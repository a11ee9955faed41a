"""objfs verify SRC DIR and --manifest FILE DIR: real runs of the verb on local trees."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from objfs.manifest import ManifestWriter, scan_local
from tests import daemons
from tests.verify.helpers import copy_tree, differences, every_kind, verify


@pytest.fixture
def trees(tmp_path) -> tuple[Path, Path]:
    """A tree with every kind of entry and a `cp -a` of it."""
    src, copy = tmp_path / "src", tmp_path / "copy"
    src.mkdir()
    copy.mkdir()
    every_kind(src)
    copy_tree(src, copy)
    return src, copy


@contextmanager
def kept_mtime(path: Path) -> Iterator[None]:
    """Change `path` inside, then set its times back: one difference, not two."""
    st = os.stat(path)
    yield
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _content(copy: Path) -> None:
    with kept_mtime(copy / "sparse"), open(copy / "sparse", "r+b") as f:
        f.write(b"changed")


def _missing(copy: Path) -> None:
    with kept_mtime(copy):
        (copy / "empty").unlink()


def _extra(copy: Path) -> None:
    with kept_mtime(copy / "dir"):
        (copy / "dir" / "new").write_bytes(b"")


def _link_broken(copy: Path) -> None:
    """hard2 becomes a file of its own, with the same bytes, mode, owner and times."""
    hard2 = copy / "hard2"
    with kept_mtime(copy):
        shutil.copy2(hard2, copy / "tmp")
        os.replace(copy / "tmp", hard2)


MUTATIONS: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "content": (_content, ["sparse: content differs"]),
    "mode": (lambda c: os.chmod(c / "setuid", 0o755), ["setuid: mode 0755 (expected 4755)"]),
    "mtime": (lambda c: os.utime(c / "link", ns=(0, 7), follow_symlinks=False),
              ["link: mtime_ns 7 (expected {mtime:link})"]),
    "xattr": (lambda c: os.setxattr(c / "sparse", "user.new", b"1"), ["sparse: xattrs differ"]),
    "missing": (_missing, ["empty: missing"]),
    "extra": (_extra, ["dir/new: not expected"]),
    "link broken": (_link_broken, ["hard2: not linked (expected hard link to dir/data)"]),
}  # fmt: skip


def _expected_lines(lines: list[str], src: Path) -> list[str]:
    mtime = os.lstat(src / "link").st_mtime_ns
    return [line.replace("{mtime:link}", str(mtime)) for line in lines]


def test_a_copy_is_equal(trees):
    src, copy = trees
    done = verify(src, copy)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""
    count = len(list(scan_local(src, on_error=print)))
    assert done.stderr == f"{count} entries, 0 differences\n"


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_each_change_is_named_by_path_and_exit_1(trees, mutation):
    src, copy = trees
    change, lines = MUTATIONS[mutation]
    change(copy)
    done = verify(src, copy)
    assert done.returncode == 1, done.stdout + done.stderr
    assert differences(done) == _expected_lines(lines, src)
    assert done.stderr.endswith(f" entries, {len(lines)} differences\n")


def test_json_lists_the_differences(trees):
    src, copy = trees
    _missing(copy)
    _extra(copy)
    done = verify("--json", src, copy)
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout) == ["dir/new: not expected", "empty: missing"]
    assert json.loads(verify("--json", src, src).stdout) == []


def test_a_manifest_checks_the_tree(trees, tmp_path):
    src, copy = trees
    manifest = tmp_path / "src.manifest"
    with ManifestWriter(manifest) as writer:
        for entry in scan_local(src, on_error=print):
            writer.write(entry)
    done = verify("--manifest", manifest, copy)
    assert done.returncode == 0, done.stdout + done.stderr
    _content(copy)
    done = verify("--manifest", manifest, copy)
    assert done.returncode == 1 and differences(done) == ["sparse: content differs"]


def test_what_cannot_be_read_is_named(trees):
    """Without root's right to read anything, a file and a directory of mode 000 cannot be read."""
    src, copy = trees
    os.chmod(copy / "sparse", 0)
    os.chmod(copy / "dir" / "sub", 0)
    no_override = "-dac_override,-dac_read_search"
    argv = ["setpriv", f"--bounding-set={no_override}", f"--inh-caps={no_override}"]
    argv += [daemons.command("objfs"), "verify", str(src), str(copy)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert differences(done) == [
        "dir/sub: mode 0000 (expected 0755)",
        "dir/sub: cannot read (Permission denied)",
        "dir/sub/hard: missing",
        "sparse: cannot read (Permission denied)",
        "sparse: missing",
    ]
