"""Semantics shared by both stores and the ickpt daemon: CAS, versions, limits, durability."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from ickpt.store import MAX_VALUE_BYTES, CheckpointStore, Conflict
from tests.ickpt.conftest import open_store, start_daemon, stop_daemon
from tests.ickpt.helpers import check_acknowledged, kill_writer_midway, run_counter


async def test_put_get_versions(store: CheckpointStore) -> None:
    assert await store.get("a") is None
    v1 = await store.put("a", b"one", 0)
    assert await store.get("a") == (v1, b"one")
    v2 = await store.put("a", b"two", v1)
    assert v2 > v1
    assert await store.get("a") == (v2, b"two")
    v3 = await store.put("b", b"", 0)
    assert v3 > v2
    assert await store.get("b") == (v3, b"")


async def test_conflicts(store: CheckpointStore) -> None:
    v1 = await store.put("a", b"one", 0)
    with pytest.raises(Conflict) as exc:
        await store.put("a", b"again", 0)
    assert exc.value.current_version == v1
    with pytest.raises(Conflict) as exc:
        await store.put("a", b"stale", v1 + 100)
    assert exc.value.current_version == v1
    with pytest.raises(Conflict) as exc:
        await store.put("missing", b"x", v1)
    assert exc.value.current_version == 0
    with pytest.raises(Conflict) as exc:
        await store.delete("a", v1 + 1)
    assert exc.value.current_version == v1
    with pytest.raises(Conflict) as exc:
        await store.delete("missing", 5)
    assert exc.value.current_version == 0
    assert await store.get("a") == (v1, b"one")


async def test_delete_and_recreate_never_reuses_versions(store: CheckpointStore) -> None:
    v1 = await store.put("a", b"one", 0)
    await store.delete("a", v1)
    assert await store.get("a") is None
    await store.delete("a", 0)  # absent and expected absent: nothing to do
    v2 = await store.put("a", b"again", 0)
    assert v2 > v1
    assert await store.get("a") == (v2, b"again")


async def test_list(store: CheckpointStore) -> None:
    assert await store.list() == []
    for key in ["vol/b", "vol/a", "other", "vol/é", "vola"]:
        await store.put(key, key.encode(), 0)
    assert await store.list() == ["other", "vol/a", "vol/b", "vol/é", "vola"]
    assert await store.list("vol/") == ["vol/a", "vol/b", "vol/é"]
    assert await store.list("nothing") == []
    version, _ = await store.get("vol/a")
    await store.delete("vol/a", version)
    assert await store.list("vol") == ["vol/b", "vol/é", "vola"]


async def test_limits(store: CheckpointStore) -> None:
    biggest = b"x" * MAX_VALUE_BYTES
    version = await store.put("big", biggest, 0)
    assert await store.get("big") == (version, biggest)
    with pytest.raises(ValueError, match="64 KiB"):
        await store.put("big", biggest + b"x", version)
    with pytest.raises(ValueError, match="non-empty"):
        await store.put("", b"x", 0)
    with pytest.raises(ValueError, match="1024"):
        await store.put("k" * 1025, b"x", 0)
    await store.put("k" * 1024, b"x", 0)
    with pytest.raises(ValueError, match="UTF-8"):
        await store.put("bad\udcff", b"x", 0)


async def test_concurrent_counter(backend: dict) -> None:
    """8 writers x 50 read-modify-CAS increments of one key: no update is lost."""
    async with AsyncExitStack() as stack:
        if backend["kind"] == "log":  # one process owns the log: its tasks share the store
            stores = [await stack.enter_async_context(open_store(backend))] * 8
        else:
            stores = [await stack.enter_async_context(open_store(backend)) for _ in range(8)]
        await run_counter(stores, "counter", 50)
        _, value = await stores[0].get("counter")
        assert int(value) == 400


async def test_kill_writer_keeps_acknowledged_puts(backend: dict) -> None:
    argv = {
        "log": lambda: ["log", str(backend["path"])],
        "etcd": lambda: ["etcd", backend["endpoints"][0], backend["prefix"]],
        "daemon": lambda: ["daemon", str(backend["port"])],
    }[backend["kind"]]()
    acked = await kill_writer_midway(argv)
    assert len(acked) >= 20
    async with open_store(backend) as store:
        await check_acknowledged(store, acked)


async def test_kill_daemon_keeps_acknowledged_puts(tmp_path: Path) -> None:
    """kill -9 of ickpt during a stream of puts, restart: every acknowledged put is there."""
    store_url = f"file://{tmp_path / 'ckpt.log'}"
    daemon = start_daemon("--store", store_url)
    try:
        acked = await kill_writer_midway(["daemon", str(daemon.port)], kill_first=daemon.proc.kill)
    finally:
        stop_daemon(daemon.proc)
    assert len(acked) >= 20
    restarted = start_daemon("--store", store_url)
    try:
        async with open_store({"kind": "daemon", "port": restarted.port}) as store:
            await check_acknowledged(store, acked)
    finally:
        assert stop_daemon(restarted.proc) == 0  # SIGTERM is a clean shutdown
