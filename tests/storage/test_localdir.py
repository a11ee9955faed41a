"""file:// specifics that the conformance suite cannot reach."""

from __future__ import annotations

from objfs.storage import localdir


def test_objects_deleted_while_listed_are_left_out(tmp_path):
    for name in ("a", "b", "c", "d"):
        (tmp_path / name).write_bytes(b"x")
    walk = localdir._walk(str(tmp_path), [])
    first, _ = next(walk)
    for path in tmp_path.iterdir():
        if path.name != first[0]:
            path.unlink()
    assert list(walk) == []
