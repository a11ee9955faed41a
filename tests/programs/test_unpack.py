"""Unpacking a large tar archive onto the mount gives back exactly the tree that was packed."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.programs.helpers import (
    assert_same_tree,
    count_kinds,
    run,
    snapshot,
    write_random_file,
)

SEED = 20240601
NUM_FILES = 20_000
NUM_DIRS = 400
NUM_EMPTY_DIRS = 60
NUM_SYMLINKS = 400
MAX_DEPTH = 8
# Whole seconds: the default (GNU) tar format stores no more, so the unpacked
# tree can be compared with the source exactly.
BASE_MTIME = 1_300_000_000

# Names that trip up path handling: spaces, non-ASCII, a leading dash and dot,
# and a 255-byte name (the Linux limit) that needs GNU tar's long-name records.
ODD_NAMES = ["with space", "ünïcødé-名前", "-dash", ".hidden", "x" * 255]


def _size(rng: random.Random) -> int:
    # Mostly small files, as in real source trees, with the page-size and 64 KiB
    # boundaries hit on purpose because that is where block-mapping bugs live.
    roll = rng.random()
    if roll < 0.05:
        return 0
    if roll < 0.08:
        return rng.choice([1, 4095, 4096, 4097, 65535, 65536])
    if roll < 0.70:
        return rng.randint(1, 4096)
    if roll < 0.95:
        return rng.randint(4097, 16384)
    return rng.randint(16385, 65536)


def build_tree(top: Path, seed: int) -> Path:
    rng = random.Random(seed)
    src = top / "src"
    src.mkdir()
    dirs = [src]
    depth = {src: 0}
    for i in range(NUM_DIRS):
        parent = rng.choice([d for d in dirs[-50:] if depth[d] < MAX_DEPTH] or [src])
        name = ODD_NAMES[i] if i < len(ODD_NAMES) else f"d{i:03d}"
        d = parent / name
        d.mkdir()
        dirs.append(d)
        depth[d] = depth[parent] + 1

    files = []
    for i in range(NUM_FILES):
        name = f"f{i:05d}" + rng.choice(["", ".c", ".txt", ".bin", " spaced", "-ü"])
        path = rng.choice(dirs) / name
        write_random_file(path, rng, _size(rng), rng.choice([0o644, 0o600, 0o755, 0o444]))
        os.utime(path, (BASE_MTIME, BASE_MTIME + i))
        files.append(path)

    empty = []
    for i in range(NUM_EMPTY_DIRS):
        d = rng.choice(dirs) / f"empty{i:02d}"
        d.mkdir()
        empty.append(d)

    for i in range(NUM_SYMLINKS):
        link = rng.choice(dirs) / f"link{i:03d}"
        kind = rng.random()
        if kind < 0.6:
            target = os.path.relpath(rng.choice(files), link.parent)
        elif kind < 0.75:
            target = os.path.relpath(rng.choice(dirs), link.parent)
        elif kind < 0.9:
            target = f"dangling/{i}"
        else:
            target = f"/nonexistent/objfs-test/{i}"
        link.symlink_to(target)

    # Directory times last, deepest first: creating an entry updates its parent.
    for n, d in enumerate(sorted(dirs + empty, key=lambda p: -len(p.parts))):
        d.chmod(rng.choice([0o755, 0o700, 0o775]))
        os.utime(d, (BASE_MTIME, BASE_MTIME - n))
    return src


@pytest.mark.slow
def test_tar_unpack_reproduces_tree(fsroot: Path, tmp_path: Path):
    src = build_tree(tmp_path, SEED)
    archive = tmp_path / "tree.tar"
    run(["tar", "-cf", archive, "-C", tmp_path, "src"], timeout=300)

    run(["tar", "-xf", archive, "-C", fsroot], timeout=900)

    unpacked = fsroot / "src"
    run(["diff", "-r", "--no-dereference", src, unpacked], timeout=900)

    # diff ignores metadata and reports nothing for an entry missing on both
    # sides, so counts and modes/times are checked separately.
    expected = snapshot(src, contents=False, xattrs=False)
    actual = snapshot(unpacked, contents=False, xattrs=False)
    assert count_kinds(expected) == {
        "file": NUM_FILES,
        "dir": 1 + NUM_DIRS + NUM_EMPTY_DIRS,
        "symlink": NUM_SYMLINKS,
    }
    assert count_kinds(actual) == count_kinds(expected)
    assert_same_tree(expected, actual, compare=("kind", "mode", "uid", "gid", "size", "mtime_ns"))
