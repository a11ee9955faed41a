"""Manifests: what a tree holds, entry by entry, written down and compared.

A manifest is JSON lines: a first line `{"objfs-manifest": 1}`, then one
object per entry whose keys are `Entry`'s fields. `path` and `link` are
`os.fsdecode` strings: json's ensure_ascii writes the surrogates that stand
for a non-UTF-8 name's bytes as escapes, and `os.fsencode` turns them back.

Entries are in *path order*: `path_key`, the path's components compared as
bytes one by one, the root (b".") first. A directory comes right before its
contents, so a tree can be listed (and two listings compared) as it is
walked, without holding it in memory. `ManifestWriter` takes entries in any
order and writes them in path order. A hard-link group's later members name
its first path; `compare` accepts a group named by any of its members.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from objfs.durable import fsync_dir

VERSION = 1
HEADER = {"objfs-manifest": VERSION}
ROOT = b"."
CHUNK = 1 << 20  # bytes read (or zeros hashed) at a time
RUN = 100_000  # entries a ManifestWriter sorts in memory before it spills them to a file

TYPES = {
    stat.S_IFDIR: "dir", stat.S_IFREG: "file", stat.S_IFLNK: "symlink", stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket", stat.S_IFCHR: "char", stat.S_IFBLK: "block",
}  # fmt: skip
DEVICES = frozenset({"char", "block"})


class ManifestError(Exception):
    """A manifest that cannot be read, said in one line naming the file and line."""


@dataclass(frozen=True, slots=True)
class Entry:
    path: bytes  # relative to the tree's root, b"/"-separated; the root itself is b"."
    type: str  # "dir" "file" "symlink" "fifo" "socket" "char" "block"
    size: int  # 0 for everything but files and symlinks (len of target)
    mode: int  # permission bits incl. setuid/setgid/sticky (st_mode & 0o7777)
    uid: int
    gid: int
    mtime_ns: int
    hash: str | None  # sha256 hex: of a file's content (holes as zeros), of a symlink's target
    rdev: int = 0  # devices only
    link: bytes | None = None  # 2nd.. path of a hard-link group (path order): the group's first
    xattrs: str | None = None  # xattrs_digest of its extended attributes


def path_key(path: bytes) -> tuple[bytes, ...]:
    """The order of entries in a manifest: by components, a directory before its contents."""
    return () if path == ROOT else tuple(path.split(b"/"))


def child(parent: bytes, name: bytes) -> bytes:
    """The path of `name` inside the directory at `parent`."""
    return name if parent == ROOT else parent + b"/" + name


def content_hasher() -> hashlib._Hash:
    """The hash of a file's content and a symlink's target in a manifest."""
    return hashlib.sha256()


def hash_zeros(hasher: hashlib._Hash, length: int) -> None:
    """Feed `length` zero bytes (a hole) to `hasher`."""
    zeros = bytes(min(length, CHUNK))
    while length > 0:
        hasher.update(zeros[: min(length, CHUNK)])
        length -= CHUNK


def symlink_hash(target: bytes) -> str:
    hasher = content_hasher()
    hasher.update(target)
    return hasher.hexdigest()


def xattrs_digest(xattrs: dict[bytes, bytes]) -> str | None:
    """None without xattrs, else the sha256 hex of the pairs sorted by name.

    The bytes hashed are, for each (name, value) in order of name:
    len(name) as 4 bytes big-endian, name, len(value) as 4 bytes big-endian, value.
    """
    if not xattrs:
        return None
    hasher = hashlib.sha256()
    for name in sorted(xattrs):
        value = xattrs[name]
        hasher.update(len(name).to_bytes(4, "big") + name + len(value).to_bytes(4, "big") + value)
    return hasher.hexdigest()


# --- the file ----------------------------------------------------------------


class ManifestWriter:
    """Writes FILE.tmp, fsyncs it and renames it to FILE on a clean exit only.

    Entries may come in any order: they are written in path order. Up to RUN
    of them are held in memory; more are sorted into runs in temporary files
    beside FILE and merged at the end. A path written twice is a ValueError.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self._batch: list[Entry] = []
        self._runs: list[IO[str]] = []  # sorted runs spilled to unnamed files

    def __enter__(self) -> ManifestWriter:
        return self

    def write(self, entry: Entry) -> None:
        self._batch.append(entry)
        if len(self._batch) >= RUN:
            self._spill()

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                self._write_sorted()
        finally:
            for run in self._runs:
                run.close()

    def _spill(self) -> None:
        run = tempfile.TemporaryFile("w+", encoding="ascii", dir=self.path.parent)
        self._runs.append(run)
        for entry in sorted(self._batch, key=_entry_key):
            run.write(json.dumps(_to_json(entry)) + "\n")
        run.seek(0)
        self._batch = []

    def _write_sorted(self) -> None:
        runs = [(_from_json(json.loads(line)) for line in run) for run in self._runs]
        merged = heapq.merge(sorted(self._batch, key=_entry_key), *runs, key=_entry_key)
        try:
            with open(self.tmp, "w", encoding="ascii") as file:
                file.write(json.dumps(HEADER) + "\n")
                last = None
                for entry in merged:
                    if entry.path == last:
                        raise ValueError(f"manifest entry {entry.path!r} written twice")
                    last = entry.path
                    file.write(json.dumps(_to_json(entry)) + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(self.tmp, self.path)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        fsync_dir(self.path.parent)


def _entry_key(entry: Entry) -> tuple[bytes, ...]:
    return path_key(entry.path)


def _to_json(entry: Entry) -> dict[str, Any]:
    fields = dataclasses.asdict(entry)
    fields["path"] = os.fsdecode(entry.path)
    fields["link"] = None if entry.link is None else os.fsdecode(entry.link)
    return fields


def read_manifest(path: Path) -> Iterator[Entry]:
    """The entries of the manifest at `path`; ManifestError on anything else.

    The file is opened and its first line checked at once, so a missing or
    wrong file fails before any entry is used.
    """
    try:
        file = open(path, encoding="ascii")
        header = file.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read: {exc}") from None
    try:
        if json.loads(header) != HEADER:
            raise ValueError
    except ValueError:
        file.close()
        raise ManifestError(f"{path}:1: not an objfs manifest (version {VERSION})") from None
    return _entries(path, file)


def _entries(path: Path, file: IO[str]) -> Iterator[Entry]:
    last: tuple[bytes, ...] | None = None
    with file:
        for number, line in enumerate(file, start=2):
            try:
                entry = _from_json(json.loads(line))
            except (ValueError, UnicodeDecodeError) as exc:
                raise ManifestError(f"{path}:{number}: {exc}") from None
            key = path_key(entry.path)
            if last is not None and key <= last:
                raise ManifestError(f"{path}:{number}: {entry.path!r} is out of order")
            last = key
            yield entry


_FIELDS = {f.name: f for f in dataclasses.fields(Entry)}
_REQUIRED = {name for name, f in _FIELDS.items() if f.default is dataclasses.MISSING}


def _from_json(fields: Any) -> Entry:
    if not isinstance(fields, dict):
        raise ValueError("not a JSON object")
    if unknown := set(fields) - set(_FIELDS):
        raise ValueError(f"unknown keys {sorted(unknown)}")
    if absent := _REQUIRED - set(fields):
        raise ValueError(f"missing keys {sorted(absent)}")
    for name, value in fields.items():
        _check_field(name, value)
    if fields["type"] not in TYPES.values():
        raise ValueError(f"unknown type {fields['type']!r}")
    link = fields.get("link")
    fields = fields | {"path": os.fsencode(fields["path"])}
    return Entry(**(fields | {"link": None if link is None else os.fsencode(link)}))


def _check_field(name: str, value: Any) -> None:
    kind = str if name in ("path", "type", "hash", "link", "xattrs") else int
    optional = name in ("hash", "link", "xattrs")
    if (value is None and optional) or (type(value) is kind):
        return
    raise ValueError(f"{name} {value!r} is not {'a string' if kind is str else 'an integer'}")


# --- a local tree --------------------------------------------------------------

OnError = Callable[[bytes, OSError], None]


def scan_local(root: Path, *, on_error: OnError) -> Iterator[Entry]:
    """Every entry of the local tree at `root` (itself as b"."), in path order.

    An entry that cannot be read is passed to `on_error(path, exc)` and left out
    (a directory that cannot be listed: its contents).
    """
    links: dict[tuple[int, int], bytes] = {}
    yield from _scan(os.fsencode(root), ROOT, links, on_error)


def _scan(
    base: bytes, path: bytes, links: dict[tuple[int, int], bytes], on_error: OnError
) -> Iterator[Entry]:
    full = base if path == ROOT else base + b"/" + path
    try:
        entry = _local_entry(full, path, links)
    except OSError as exc:
        on_error(path, exc)
        return
    yield entry
    if entry.type != "dir":
        return
    try:
        names = sorted(os.listdir(full))
    except OSError as exc:
        on_error(path, exc)
        return
    for name in names:
        yield from _scan(base, child(path, name), links, on_error)


def _local_entry(full: bytes, path: bytes, links: dict[tuple[int, int], bytes]) -> Entry:
    st = os.lstat(full)
    kind = TYPES[stat.S_IFMT(st.st_mode)]
    size, digest = 0, None
    if kind == "file":
        size, digest = st.st_size, _file_hash(full)
    elif kind == "symlink":
        target = os.readlink(full)
        size, digest = len(target), symlink_hash(target)
    link = None
    if st.st_nlink > 1 and kind != "dir":
        link = links.setdefault((st.st_dev, st.st_ino), path)
        link = None if link == path else link
    return Entry(
        path, kind, size, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns,
        digest, st.st_rdev if kind in DEVICES else 0, link, xattrs_digest(_xattrs(full)),
    )  # fmt: skip


def _file_hash(full: bytes) -> str:
    hasher = content_hasher()
    # Not blocked by a file swapped for a fifo (or a symlink) since its lstat.
    fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        while chunk := os.read(fd, CHUNK):
            hasher.update(chunk)
    finally:
        os.close(fd)
    return hasher.hexdigest()


def _xattrs(full: bytes) -> dict[bytes, bytes]:
    names = os.listxattr(full, follow_symlinks=False)
    return {os.fsencode(name): os.getxattr(full, name, follow_symlinks=False) for name in names}


# --- comparing -------------------------------------------------------------------


def compare(expected: Iterable[Entry], actual: Iterable[Entry]) -> Iterator[str]:
    """One line per difference, in path order; both inputs in path order."""
    want, got = first_links(expected), first_links(actual)
    a, b = next(want, None), next(got, None)
    while a is not None or b is not None:
        if b is None or (a is not None and path_key(a.path) < path_key(b.path)):
            assert a is not None
            yield f"{_show(a.path)}: missing"
            a = next(want, None)
        elif a is None or path_key(b.path) < path_key(a.path):
            yield f"{_show(b.path)}: not expected"
            b = next(got, None)
        else:
            yield from (f"{_show(a.path)}: {what}" for what in differences(a, b))
            a, b = next(want, None), next(got, None)


def first_links(entries: Iterable[Entry]) -> Iterator[Entry]:
    """The entries (in path order) with each hard-link group named by its first path.

    A writer may have named a group by another of its paths (the least in plain
    byte order, say): any member will do, the comparison is of groups.
    """
    first: dict[bytes, bytes] = {}  # the path a group was named by -> its first path
    for entry in entries:
        if entry.link is None:
            named = first.get(entry.path, entry.path)
            yield entry if named == entry.path else dataclasses.replace(entry, link=named)
        else:
            named = first.setdefault(entry.link, min(entry.path, entry.link, key=path_key))
            link = None if named == entry.path else named
            yield entry if link == entry.link else dataclasses.replace(entry, link=link)


def differences(want: Entry, got: Entry) -> Iterator[str]:
    """What differs between two entries of the same path."""
    if got.type != want.type:
        yield f"type {got.type} (expected {want.type})"
        return
    if got.size != want.size and want.type != "dir":
        yield f"size {got.size} (expected {want.size})"
    elif got.hash != want.hash:
        yield "symlink target differs" if want.type == "symlink" else "content differs"
    if got.mode != want.mode:
        yield f"mode {got.mode:04o} (expected {want.mode:04o})"
    for name in ("uid", "gid", "mtime_ns", "rdev"):
        if getattr(got, name) != getattr(want, name):
            yield f"{name} {getattr(got, name)} (expected {getattr(want, name)})"
    if got.link != want.link:
        yield f"{_linked(got.link)} (expected {_linked(want.link)})"
    if got.xattrs != want.xattrs:
        yield "xattrs differ"


def _linked(link: bytes | None) -> str:
    return "not linked" if link is None else f"hard link to {_show(link)}"


def _show(path: bytes) -> str:
    """A path for a line of text: undecodable bytes as \\x escapes."""
    return path.decode("utf-8", "backslashreplace")
