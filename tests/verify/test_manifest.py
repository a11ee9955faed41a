"""The manifest format, the scan of a local tree, and the comparison, in process."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat

import pytest

from objfs import manifest
from objfs.manifest import (
    Entry,
    ManifestError,
    ManifestWriter,
    compare,
    path_key,
    read_manifest,
    scan_local,
    xattrs_digest,
)
from tests.verify.helpers import MIB, ODD_NAME, every_kind

SHA_A = hashlib.sha256(b"a").hexdigest()
ENTRIES = [
    Entry(b".", "dir", 0, 0o755, 0, 0, 1, None),
    Entry(b"blk", "block", 0, 0o600, 0, 6, 2, None, rdev=os.makedev(8, 1)),
    Entry(b"d", "dir", 0, 0o1777, 1, 2, 3, None, xattrs="ab" * 32),
    Entry(b"d/" + ODD_NAME, "file", 1, 0o4755, 7, 8, -9, SHA_A),
    Entry(b"d/z", "file", 1, 0o644, 7, 8, 10, SHA_A, link=b"d/" + ODD_NAME),
    Entry(b"fifo", "fifo", 0, 0o644, 0, 0, 11, None),
    Entry(b"null", "char", 0, 0o666, 0, 0, 12, None, rdev=os.makedev(1, 3)),
    Entry(b"sock", "socket", 0, 0o755, 0, 0, 13, None),
    Entry(b"z-" + ODD_NAME, "symlink", 1, 0o777, 0, 0, 14, SHA_A),
]


def test_every_type_and_a_non_utf8_name_round_trip(tmp_path):
    path = tmp_path / "m.jsonl"
    with ManifestWriter(path) as writer:
        for entry in ENTRIES:
            writer.write(entry)
    assert not (tmp_path / "m.jsonl.tmp").exists()
    lines = path.read_text(encoding="ascii").splitlines()
    assert json.loads(lines[0]) == {"objfs-manifest": 1}
    assert json.loads(lines[4])["path"] == os.fsdecode(b"d/" + ODD_NAME)
    assert list(read_manifest(path)) == ENTRIES


def test_a_failed_write_leaves_no_manifest(tmp_path):
    path = tmp_path / "m.jsonl"
    with pytest.raises(RuntimeError), ManifestWriter(path) as writer:
        writer.write(ENTRIES[0])
        raise RuntimeError("the load failed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("run", [100, 2])
def test_entries_in_any_order_are_written_in_path_order(tmp_path, monkeypatch, run):
    monkeypatch.setattr(manifest, "RUN", run)  # 2: sorted runs spilled to files and merged
    path = tmp_path / "m.jsonl"
    with ManifestWriter(path) as writer:
        for entry in reversed(ENTRIES):
            writer.write(entry)
    assert list(read_manifest(path)) == ENTRIES
    assert list(tmp_path.iterdir()) == [path]


def test_a_path_written_twice_is_refused_and_leaves_no_manifest(tmp_path):
    with pytest.raises(ValueError, match="written twice"), ManifestWriter(tmp_path / "m") as writer:
        for entry in [*ENTRIES, ENTRIES[3]]:
            writer.write(entry)
    assert list(tmp_path.iterdir()) == []


def test_path_order_puts_a_directory_before_its_contents():
    paths = [b"a-b", b"a/c", b".", b"a", b"a/b/c", b"-", b"a0"]
    assert sorted(paths, key=path_key) == [b".", b"-", b"a", b"a/b/c", b"a/c", b"a-b", b"a0"]


GOOD = json.dumps(dataclasses.asdict(ENTRIES[1]) | {"path": "blk"})
BAD_MANIFESTS = {
    "not a manifest": ('{"something": "else"}\n', ":1: not an objfs manifest"),
    "empty": ("", ":1: not an objfs manifest"),
    "not json": ('{"objfs-manifest": 1}\n{nope\n', ":2: "),
    "a missing key": ('{"objfs-manifest": 1}\n{"path": "a"}\n', ":2: missing keys"),
    "an unknown key": ('{"objfs-manifest": 1}\n' + GOOD[:-1] + ', "x": 1}\n', ":2: unknown keys"),
    "a wrong type": ('{"objfs-manifest": 1}\n' + GOOD.replace('"size": 0', '"size": "0"'),
                     ":2: size '0' is not an integer"),
    "an unknown file type": ('{"objfs-manifest": 1}\n' + GOOD.replace("block", "door"),
                             ":2: unknown type 'door'"),
    "out of order": ('{"objfs-manifest": 1}\n' + f"{GOOD}\n{GOOD}\n", ":3: b'blk' is out of order"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_MANIFESTS))
def test_a_bad_manifest_is_one_line_naming_file_and_line(tmp_path, case):
    text, message = BAD_MANIFESTS[case]
    path = tmp_path / "m.jsonl"
    path.write_text(text)
    with pytest.raises(ManifestError) as raised:
        list(read_manifest(path))
    assert str(raised.value).startswith(f"{path}:") and message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_missing_manifest_fails_at_once(tmp_path):
    with pytest.raises(ManifestError, match="cannot read"):
        read_manifest(tmp_path / "absent")


def test_xattrs_digest_hashes_length_prefixed_sorted_pairs():
    assert xattrs_digest({}) is None
    pairs = {b"user.b": b"", b"user.a": b"xy"}
    data = b"\0\0\0\x06user.a\0\0\0\x02xy" + b"\0\0\0\x06user.b\0\0\0\0"
    assert xattrs_digest(pairs) == hashlib.sha256(data).hexdigest()


FILE = Entry(b"f", "file", 1, 0o644, 1, 2, 3, SHA_A, xattrs="x")
CHANGES = {
    "missing": ([FILE], [], "f: missing"),
    "not expected": ([], [FILE], "f: not expected"),
    "type": ([FILE], [dataclasses.replace(FILE, type="fifo")], "f: type fifo (expected file)"),
    "size": ([FILE], [dataclasses.replace(FILE, size=12, hash="h")], "f: size 12 (expected 1)"),
    "content": ([FILE], [dataclasses.replace(FILE, hash="h")], "f: content differs"),
    "target": ([dataclasses.replace(FILE, type="symlink")],
               [dataclasses.replace(FILE, type="symlink", hash="h")], "f: symlink target differs"),
    "mode": ([FILE], [dataclasses.replace(FILE, mode=0o4755)], "f: mode 4755 (expected 0644)"),
    "uid": ([FILE], [dataclasses.replace(FILE, uid=9)], "f: uid 9 (expected 1)"),
    "gid": ([FILE], [dataclasses.replace(FILE, gid=9)], "f: gid 9 (expected 2)"),
    "mtime": ([FILE], [dataclasses.replace(FILE, mtime_ns=9)], "f: mtime_ns 9 (expected 3)"),
    "rdev": ([FILE], [dataclasses.replace(FILE, rdev=9)], "f: rdev 9 (expected 0)"),
    "linked": ([FILE], [dataclasses.replace(FILE, link=b"e")],
               "f: hard link to e (expected not linked)"),
    "unlinked": ([dataclasses.replace(FILE, link=b"e")], [FILE],
                 "f: not linked (expected hard link to e)"),
    "xattrs": ([FILE], [dataclasses.replace(FILE, xattrs=None)], "f: xattrs differ"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CHANGES))
def test_each_kind_of_difference_is_one_line_by_path(case):
    expected, actual, line = CHANGES[case]
    assert list(compare(expected, actual)) == [line]
    assert list(compare(expected, expected)) == []


def test_differences_come_in_path_order_and_directory_sizes_do_not_count():
    root = Entry(b".", "dir", 4096, 0o755, 0, 0, 1, None)
    expected = [root, Entry(b"a", "dir", 10, 0o755, 0, 0, 1, None), FILE]
    changed = dataclasses.replace
    actual = [changed(root, size=0), changed(FILE, path=b"a/x"), changed(FILE, mode=0o600),
              changed(FILE, path=b"g")]  # fmt: skip
    assert list(compare(expected, actual)) == [
        "a: missing", "a/x: not expected", "f: mode 0600 (expected 0644)", "g: not expected"
    ]  # fmt: skip


def test_scan_local_lists_every_kind_of_entry(tmp_path):
    every_kind(tmp_path)
    errors: list = []
    entries = list(scan_local(tmp_path, on_error=lambda *e: errors.append(e)))
    assert errors == []
    assert [e.path for e in entries] == sorted((e.path for e in entries), key=path_key)
    found = {e.path: e for e in entries}
    assert found[b"."].type == "dir"
    kinds = {p: found[p].type for p in (b"dir", b"empty", b"link", b"fifo", b"socket", b"null")}
    assert kinds == {b"dir": "dir", b"empty": "file", b"link": "symlink", b"fifo": "fifo",
                     b"socket": "socket", b"null": "char"}  # fmt: skip
    assert found[b"null"].rdev == os.makedev(1, 3) and found[b"fifo"].rdev == 0
    assert found[b"empty"].hash == hashlib.sha256(b"").hexdigest()
    assert (found[b"empty"].uid, found[b"empty"].gid) == (1234, 5678)
    sparse = bytes(4 * MIB) + b"after a hole" + bytes(2 * MIB - 12)
    assert found[b"sparse"].hash == hashlib.sha256(sparse).hexdigest()
    assert found[b"sparse"].size == 6 * MIB
    data = (tmp_path / "dir" / "data").read_bytes()
    assert found[b"dir/data"].hash == hashlib.sha256(data).hexdigest()
    assert found[b"dir/data"].link is None
    assert found[b"dir/sub/hard"].link == b"dir/data" == found[b"hard2"].link
    assert found[b"dir/data"].xattrs == xattrs_digest({b"user.colour": b"blue"})
    assert found[b"empty"].xattrs == xattrs_digest({b"user.empty": b""})
    assert found[b"sparse"].xattrs is None
    assert (
        found[b"link"].size == 8 and found[b"link"].hash == hashlib.sha256(b"dir/data").hexdigest()
    )
    assert found[b"setuid"].mode == 0o4755 and found[b"empty-dir"].mode == 0o1777
    assert found[b"dir/sub"].mtime_ns == 1_600_000_000_123_456_789
    assert found[ODD_NAME].hash == hashlib.sha256(b"odd").hexdigest()
    assert stat.S_ISDIR(os.lstat(tmp_path).st_mode)


def test_a_hard_link_group_may_be_named_by_any_of_its_paths():
    d = Entry(b"a", "dir", 0, 0o755, 0, 0, 1, None)
    member = dataclasses.replace(FILE, path=b"a/c")
    other = dataclasses.replace(FILE, path=b"a-b")
    by_bytes = [d, dataclasses.replace(member, link=b"a-b"), other]  # b"a-b" < b"a/c"
    by_path = [d, member, dataclasses.replace(other, link=b"a/c")]  # path order: a/c first
    assert list(compare(by_bytes, by_path)) == []
    assert list(compare(by_path, by_bytes)) == []
    assert list(compare(by_bytes, [d, member, other])) == [
        "a-b: not linked (expected hard link to a/c)"
    ]
