"""LogStore: torn/corrupt tails, corruption in the middle, compaction, reopening, one writer."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest

from ickpt.logstore import MAGIC, CorruptLogError, LogInUse, LogStore
from tests import daemons
from tests.ickpt.conftest import start_daemon, stop_daemon

VALUE = b"v" * 100


async def make_log(path: Path, count: int) -> dict[str, int]:
    store = await LogStore.open(path)
    try:
        return {f"k{i}": await store.put(f"k{i}", VALUE + bytes([i]), 0) for i in range(count)}
    finally:
        await store.aclose()


async def assert_contents(store: LogStore, versions: dict[str, int]) -> None:
    assert await store.list() == sorted(versions)
    for key, version in versions.items():
        assert await store.get(key) == (version, VALUE + bytes([int(key[1:])]))


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def truncate_mid_record(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-30])


def append_garbage(path: Path) -> None:
    with open(path, "ab") as f:
        f.write(b"\x00\x00\x01\x00garbage" * 7)


def flip_last_record(path: Path) -> None:
    flip_byte(path, path.stat().st_size - 5)


@pytest.mark.parametrize(
    "damage, survivors",
    [(truncate_mid_record, 9), (append_garbage, 10), (flip_last_record, 9)],
)
async def test_corrupt_tail_is_dropped(tmp_path, caplog, damage, survivors) -> None:
    path = tmp_path / "ckpt.log"
    versions = await make_log(path, 10)
    damage(path)
    expected = {k: v for k, v in versions.items() if int(k[1:]) < survivors}
    with caplog.at_level(logging.WARNING, logger="ickpt.logstore"):
        store = await LogStore.open(path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(path) in warnings[0] and "offset" in warnings[0]
    try:
        await assert_contents(store, expected)
        new_version = await store.put("k99", VALUE + bytes([99]), 0)
        assert new_version > max(versions.values()) or survivors < 10
        expected["k99"] = new_version
    finally:
        await store.aclose()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ickpt.logstore"):
        store = await LogStore.open(path)
    assert not caplog.records
    try:
        await assert_contents(store, expected)
    finally:
        await store.aclose()


async def test_corruption_in_the_middle_refuses_to_open(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.log"
    versions = await make_log(path, 10)
    flip_byte(path, len(MAGIC) + 40)  # inside the first record
    with pytest.raises(CorruptLogError, match="refusing to open") as exc:
        await LogStore.open(path)
    assert str(path) in str(exc.value) and f"offset {len(MAGIC)}" in str(exc.value)
    # The operator's explicit choice: truncate at the damage, losing what follows.
    store = await LogStore.open(path, repair=True)
    try:
        assert await store.list() == []
        assert await store.put("k0", b"x", 0) > 0
    finally:
        await store.aclose()
    assert versions


async def test_not_a_log_refuses_to_open(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.log"
    path.write_bytes(b"something else entirely")
    with pytest.raises(CorruptLogError, match="not an ickpt log"):
        await LogStore.open(path)


async def test_empty_or_torn_creation_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.log"
    path.write_bytes(MAGIC[:3])
    store = await LogStore.open(path)
    try:
        assert await store.list() == []
        await store.put("a", b"1", 0)
    finally:
        await store.aclose()
    assert path.read_bytes().startswith(MAGIC)


async def test_compaction_keeps_data_and_shrinks(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.log"
    limit = 64 * 1024
    store = await LogStore.open(path, min_compact_bytes=limit)
    try:
        doomed = await store.put("doomed", b"d", 0)
        await store.delete("doomed", doomed)
        version = 0
        for i in range(300):
            version = await store.put("hot", str(i).encode() * 200, version)
            assert path.stat().st_size <= limit + 2048
        await store.put("cold", b"c", 0)
        assert not (tmp_path / "ckpt.log.compact").exists()
    finally:
        await store.aclose()
    assert path.stat().st_size < limit
    store = await LogStore.open(path, min_compact_bytes=limit)
    try:
        assert await store.get("hot") == (version, b"299" * 200)
        assert await store.list() == ["cold", "hot"]
        # The deleted key's revision is remembered by the snapshot: versions never go back.
        assert await store.put("doomed", b"again", 0) > version
    finally:
        await store.aclose()


async def test_closed_store_refuses_mutations(tmp_path: Path) -> None:
    store = await LogStore.open(tmp_path / "ckpt.log")
    await store.aclose()
    with pytest.raises(Exception, match="closed"):
        await store.put("a", b"1", 0)


async def test_a_log_has_one_writer(tmp_path) -> None:
    path = tmp_path / "ckpt.log"
    daemon = start_daemon("--store", f"file://{path}")
    try:
        with pytest.raises(LogInUse) as refused:
            await LogStore.open(path)
        assert str(refused.value) == (
            f"checkpoint log {path} is in use by another process "
            "(a running ickpt? pass --ickpt HOST:PORT)"
        )
        second = subprocess.run(
            [daemons.command("ickpt"), "--port", "0", "--store", f"file://{path}"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert second.returncode == 2
        assert second.stderr.strip().splitlines() == [f"ickpt: {refused.value}"]
    finally:
        stop_daemon(daemon.proc)
    store = await LogStore.open(path)  # the daemon's lock went with it
    try:
        with pytest.raises(LogInUse):
            await LogStore.open(path)  # in one process too
    finally:
        await store.aclose()
    await (await LogStore.open(path)).aclose()
