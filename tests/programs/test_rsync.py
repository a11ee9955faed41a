"""rsync -aHX onto the mount and back loses nothing: modes, owners, times, links, xattrs."""

from __future__ import annotations

import os
import random
from pathlib import Path

from tests.programs.helpers import (
    PAST_NS,
    assert_same_tree,
    link_groups,
    run,
    snapshot,
    write_random_file,
)

SEED = 11
RSYNC = ["rsync", "-aHX"]


def build_source(src: Path) -> None:
    rng = random.Random(SEED)
    src.mkdir()
    for d, mode in [
        ("sgid", 0o2775),
        ("sgid/inherits", 0o2755),
        ("sticky", 0o1777),
        ("private", 0o700),
        ("emptydir", 0o755),
        ("hl/sub", 0o755),
        ("sym", 0o755),
    ]:
        (src / d).mkdir(parents=True)
        (src / d).chmod(mode)
        if d == "sgid":
            # Before anything is created inside, so the group is inherited below it.
            os.chown(src / d, -1, 4321)

    files = {
        "plain.txt": (10_000, 0o644),
        "private/secret": (300, 0o600),
        "script.sh": (120, 0o755),
        "readonly": (50, 0o444),
        "setuid": (60, 0o4755),
        "empty": (0, 0o644),
        "emptydir-sibling-empty": (0, 0o600),
        # Not a multiple of any block size, and larger than one rsync block.
        "big.bin": (1024 * 1024 + 123, 0o640),
        "sgid/file": (4096, 0o664),
        "sgid/inherits/file": (1, 0o644),
        "sticky/file": (777, 0o666),
        "owned": (42, 0o644),
        "hl/a1": (5000, 0o644),
        "hl/b1": (70_000, 0o600),
    }
    for rel, (size, mode) in files.items():
        write_random_file(src / rel, rng, size, mode)
    # Ownership the test process does not have: rsync -a as root must carry it over.
    os.chown(src / "owned", 1234, 5678)
    os.chown(src / "private/secret", 1234, -1)

    # Two hard-link groups, one spanning directories.
    os.link(src / "hl/a1", src / "hl/a2")
    os.link(src / "hl/a1", src / "hl/sub/a3")
    os.link(src / "hl/b1", src / "private/b2")

    for name, target in [
        ("rel", "../plain.txt"),
        ("dir", "../sgid"),
        ("dangling", "nowhere/at/all"),
        ("abs", "/nonexistent/objfs-test/target"),
        ("long", "x/" * 500 + "end"),
    ]:
        (src / "sym" / name).symlink_to(target)
    os.mkfifo(src / "fifo", 0o640)

    xattrs = {
        "plain.txt": {
            "user.comment": b"hello",
            "user.binary": bytes(range(256)),
            "user.empty": b"",
            "user.big": rng.randbytes(3000),
        },
        "hl/a1": {"user.shared-by-links": b"one inode"},
        "sgid": {"user.on-a-dir": b"d"},
        "empty": {"user.only-xattr": b"no data, just this"},
    }
    for rel, attrs in xattrs.items():
        for name, value in attrs.items():
            os.setxattr(src / rel, name, value)

    # Times last, deepest first, since creating entries updates their parents' times.
    # Distinct nanoseconds per entry, so entries cannot be confused with each other.
    paths = sorted(
        (p for p in [src, *src.rglob("*")] if not p.is_symlink()),
        key=lambda p: (-len(p.parts), str(p)),
    )
    for i, path in enumerate(paths):
        mtime = PAST_NS + i * 1_000_000_007
        os.utime(path, ns=(mtime, mtime))


def test_rsync_round_trip(fsroot: Path, tmp_path: Path):
    src, back = tmp_path / "src", tmp_path / "back"
    dst = fsroot / "dst"
    build_source(src)
    expected = snapshot(src)
    # Guard the guard: the source really has what the test claims to check.
    assert len(link_groups(expected)) == 2
    assert expected["sgid"].mode == 0o2775
    assert expected["sgid/file"].gid == expected["sgid/inherits"].gid == 4321
    assert expected["plain.txt"].mtime_ns % 1_000_000_000 != 0

    run([*RSYNC, f"{src}/", f"{dst}/"])
    on_mount = snapshot(dst)
    assert_same_tree(expected, on_mount)
    assert link_groups(on_mount) == link_groups(expected)

    run([*RSYNC, f"{dst}/", f"{back}/"])
    returned = snapshot(back)
    assert_same_tree(expected, returned)
    assert link_groups(returned) == link_groups(expected)

    # A second pass must find nothing to do: every size, time, mode, owner, link and
    # xattr read back from the mount matches what rsync wrote there.
    for source, target in [(src, dst), (dst, back)]:
        out = run([*RSYNC, "-n", "--itemize-changes", f"{source}/", f"{target}/"]).stdout
        assert out == "", f"rsync would still change {target}:\n{out}"
