"""Code shared by the program tests: running commands, and describing trees to compare."""

from __future__ import annotations

import hashlib
import os
import random
import stat
import subprocess
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

# Generous, because a FUSE mount can be many times slower than local disk; it only
# exists so that a hung program fails the test instead of eating the session timeout.
DEFAULT_TIMEOUT = 300

# A fixed past instant with a non-zero nanosecond part, so truncation to seconds
# or microseconds anywhere on the way shows up as a difference.
PAST_NS = 1_234_567_890_123_456_789


def run(
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a program to completion; a non-zero exit fails with its output."""
    result = subprocess.run(
        [os.fspath(a) for a in args],
        cwd=cwd,
        env=None if env is None else dict(env),
        input=input,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} exited {result.returncode}\n"
            f"--- stdout (tail)\n{result.stdout[-4000:]}\n"
            f"--- stderr (tail)\n{result.stderr[-4000:]}"
        )
    return result


def write_random_file(path: Path, rng: random.Random, size: int, mode: int = 0o644) -> None:
    path.write_bytes(rng.randbytes(size))
    # chmod, not the open mode: the umask must not decide what the test expects.
    path.chmod(mode)


@dataclass(frozen=True)
class Entry:
    kind: str  # "file", "dir", "symlink", "fifo", or "other"
    mode: int  # permission bits including setuid/setgid/sticky
    uid: int
    gid: int
    size: int | None  # regular files only: a directory's size is filesystem-specific
    mtime_ns: int | None  # None for symlinks: few programs preserve those, see snapshot()
    target: str | None
    digest: str | None
    xattrs: tuple[tuple[str, bytes], ...]
    ino: int
    nlink: int


# The fields that say whether two trees hold the same thing; inode numbers never
# match across filesystems, hard links are compared as groups instead.
CONTENT_FIELDS = ("kind", "mode", "uid", "gid", "size", "mtime_ns", "target", "digest", "xattrs")


def _kind(st_mode: int) -> str:
    if stat.S_ISREG(st_mode):
        return "file"
    if stat.S_ISDIR(st_mode):
        return "dir"
    if stat.S_ISLNK(st_mode):
        return "symlink"
    if stat.S_ISFIFO(st_mode):
        return "fifo"
    return "other"


def _digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _user_xattrs(path: str) -> tuple[tuple[str, bytes], ...]:
    # Only user.*: security.* and system.* are the host's business (SELinux labels,
    # POSIX ACLs), and Linux refuses user.* on symlinks, so those are never asked.
    names = sorted(n for n in os.listxattr(path) if n.startswith("user."))
    return tuple((n, os.getxattr(path, n)) for n in names)


def snapshot(root: Path, *, contents: bool = True, xattrs: bool = True) -> dict[str, Entry]:
    """Every entry under root (root itself as "."), keyed by its path relative to root.

    Symlinks are not followed and their timestamps are left out: tar and rsync set
    them, but nothing reads them back, and Linux has no lchmod to make modes matter.
    """
    found = {".": _describe(os.fspath(root), contents=contents, xattrs=xattrs)}
    pending = [os.fspath(root)]
    while pending:
        with os.scandir(pending.pop()) as listing:
            for item in listing:
                rel = os.path.relpath(item.path, root)
                found[rel] = _describe(item.path, contents=contents, xattrs=xattrs)
                if item.is_dir(follow_symlinks=False):
                    pending.append(item.path)
    return found


def _describe(path: str, *, contents: bool, xattrs: bool) -> Entry:
    st = os.lstat(path)
    kind = _kind(st.st_mode)
    return Entry(
        kind=kind,
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        size=st.st_size if kind == "file" else None,
        mtime_ns=None if kind == "symlink" else st.st_mtime_ns,
        target=os.readlink(path) if kind == "symlink" else None,
        digest=_digest(path) if contents and kind == "file" else None,
        xattrs=_user_xattrs(path) if xattrs and kind != "symlink" else (),
        ino=st.st_ino,
        nlink=st.st_nlink,
    )


def assert_same_tree(
    expected: Mapping[str, Entry],
    actual: Mapping[str, Entry],
    compare: Sequence[str] = CONTENT_FIELDS,
) -> None:
    """Fail listing the first few differences: missing, extra, or differing entries."""
    assert set(compare) <= {f.name for f in fields(Entry)}
    problems = []
    for rel in sorted(expected.keys() - actual.keys()):
        problems.append(f"missing: {rel}")
    for rel in sorted(actual.keys() - expected.keys()):
        problems.append(f"unexpected: {rel}")
    for rel in sorted(expected.keys() & actual.keys()):
        want, got = expected[rel], actual[rel]
        for name in compare:
            if getattr(want, name) != getattr(got, name):
                problems.append(
                    f"{rel}: {name} expected {_show(name, getattr(want, name))}, "
                    f"got {_show(name, getattr(got, name))}"
                )
    if problems:
        shown = "\n".join(problems[:40])
        more = f"\n... and {len(problems) - 40} more" if len(problems) > 40 else ""
        raise AssertionError(f"{len(problems)} differences:\n{shown}{more}")


def _show(name: str, value: object) -> str:
    return oct(value) if name == "mode" and isinstance(value, int) else repr(value)


def link_groups(tree: Mapping[str, Entry]) -> set[frozenset[str]]:
    """The sets of paths that share an inode, for every inode with more than one path."""
    by_ino: dict[int, set[str]] = defaultdict(set)
    for rel, entry in tree.items():
        if entry.kind == "file":
            by_ino[entry.ino].add(rel)
    return {frozenset(paths) for paths in by_ino.values() if len(paths) > 1}


def count_kinds(tree: Mapping[str, Entry]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for entry in tree.values():
        counts[entry.kind] += 1
    return dict(counts)
