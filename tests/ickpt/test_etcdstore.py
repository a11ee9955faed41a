"""EtcdStore: fail-over in a 3-member cluster, lost replies, unreachable endpoints."""

from __future__ import annotations

import uuid

import pytest
import trio

from ickpt.etcdstore import EtcdStore, prefix_end
from ickpt.store import Conflict, StoreError
from tests.ickpt.conftest import Cluster
from tests.ickpt.helpers import check_acknowledged, increment, kill_writer_midway


def unique_prefix() -> str:
    return f"test/{uuid.uuid4().hex}/"


class LosingStore(EtcdStore):
    """Applies the next txn, 'loses' its reply, and retries it like a real fail-over."""

    lose_next = False

    async def _call(self, path: str, body: dict) -> tuple[dict, bool]:
        if path == "/v3/kv/txn" and self.lose_next:
            self.lose_next = False
            await super()._call(path, body)
            reply, _ = await super()._call(path, body)
            return reply, True
        return await super()._call(path, body)


async def test_lost_reply_is_recognised_as_success(etcd_service: dict) -> None:
    store = LosingStore([etcd_service["endpoint"]], prefix=unique_prefix())
    try:
        store.lose_next = True
        created = await store.put("k", b"one", 0)
        assert await store.get("k") == (created, b"one")
        store.lose_next = True
        updated = await store.put("k", b"two", created)
        assert await store.get("k") == (updated, b"two")
        store.lose_next = True
        await store.delete("k", updated)
        assert await store.get("k") is None
    finally:
        await store.aclose()


async def test_real_conflict_after_lost_reply_is_a_conflict(etcd_service: dict) -> None:
    prefix = unique_prefix()
    store = LosingStore([etcd_service["endpoint"]], prefix=prefix)
    other = EtcdStore([etcd_service["endpoint"]], prefix=prefix)
    try:
        version = await store.put("k", b"one", 0)
        theirs = await other.put("k", b"two", version)
        store.lose_next = True  # both attempts fail the comparison: nothing of ours applied
        with pytest.raises(Conflict) as exc:
            await store.put("k", b"two", version)
        assert exc.value.current_version == theirs
    finally:
        await store.aclose()
        await other.aclose()


async def test_no_endpoint_answers(etcd_service: dict) -> None:
    from tests.ickpt.conftest import _free_ports

    dead = [f"http://127.0.0.1:{p}" for p in _free_ports(2)]
    store = EtcdStore(dead, retry_deadline=0.5)
    try:
        with pytest.raises(StoreError, match="no etcd endpoint answered") as exc:
            await store.get("k")
        assert all(endpoint in str(exc.value) for endpoint in dead)
    finally:
        await store.aclose()


async def test_dead_endpoint_is_skipped(etcd_service: dict) -> None:
    from tests.ickpt.conftest import _free_ports

    dead = f"http://127.0.0.1:{_free_ports(1)[0]}"
    store = EtcdStore([dead, etcd_service["endpoint"]], prefix=unique_prefix())
    try:
        version = await store.put("k", b"v", 0)
        assert await store.get("k") == (version, b"v")
    finally:
        await store.aclose()


def test_prefix_end() -> None:
    assert prefix_end(b"a/") == b"a0"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"") == b"\0"


async def test_cluster_member_killed_during_counter(etcd_cluster: Cluster) -> None:
    """8 writers on a 3-member cluster; the leader is SIGKILLed mid-way; no lost update."""
    prefix, per_writer = unique_prefix(), 50
    endpoints = etcd_cluster.endpoints
    # Each writer starts on a different member, so some are talking to the one killed.
    stores = [
        EtcdStore(endpoints[i % 3 :] + endpoints[: i % 3], prefix=prefix, timeout=2.0)
        for i in range(8)
    ]
    done, killed = [0], []

    async def writer(store: EtcdStore) -> None:
        for _ in range(per_writer):
            await increment(store, "counter")
            done[0] += 1

    async def killer() -> None:
        while done[0] < 100:
            await trio.sleep(0.01)
        killed.append(etcd_cluster.leader())
        etcd_cluster.kill(killed[0])

    try:
        with trio.fail_after(45):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(killer)
                for store in stores:
                    nursery.start_soon(writer, store)
        assert etcd_cluster.procs[killed[0]].poll() is not None
        _, value = await stores[killed[0] + 1].get("counter")
        assert int(value) == 8 * per_writer
    finally:
        for store in stores:
            await store.aclose()


async def test_cluster_with_a_member_killed_keeps_acknowledged_puts(etcd_cluster: Cluster) -> None:
    """With the leader SIGKILLed, a writer (first endpoint: the dead one) keeps going;
    SIGKILL of the writer then loses no acknowledged put."""
    dead = etcd_cluster.leader()
    etcd_cluster.kill(dead)
    endpoints = etcd_cluster.endpoints
    ordered = [endpoints[dead]] + [e for i, e in enumerate(endpoints) if i != dead]
    prefix = f"kill/{uuid.uuid4().hex}/"
    acked = await kill_writer_midway(["etcd", ",".join(ordered), prefix], timeout=60)
    assert len(acked) >= 20
    async with EtcdStore(ordered, prefix=prefix) as store:
        await check_acknowledged(store, acked)
