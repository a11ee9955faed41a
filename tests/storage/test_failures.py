"""Failures of real servers: refused credentials, a server that goes away, faults."""

from __future__ import annotations

import os
import signal

import pytest
import trio

from objfs.storage import (
    AlreadyExists,
    AuthError,
    Faults,
    FaultyStore,
    NotFound,
    RetryingStore,
    RetryPolicy,
    Unavailable,
    open_store,
)
from objfs.storage.urls import open_raw
from tests import services

from .backends import REMOTE, TEST_POLICY, azure_url, fresh_container, swift_url
from .test_conformance import MiB, digest, pattern


def wrong_credentials_url(backend: str, request) -> str:
    if backend == "swift":
        info = request.getfixturevalue("swift_service")
        return swift_url(
            info, fresh_container(), auth_url=info["auth_url"], user=info["user"], key="wrong"
        )
    info = request.getfixturevalue("azurite_service")
    good_key = info["account_key"]
    bad_key = good_key[:10] + ("A" if good_key[10] != "A" else "B") + good_key[11:]
    return azure_url(
        info, fresh_container(), account_url=info["blob_endpoint"], account_key=bad_key
    )


@pytest.mark.parametrize("backend", REMOTE)
async def test_wrong_credentials_fail_at_once(backend: str, request):
    store = open_store(wrong_credentials_url(backend, request), RetryPolicy(attempts=50))
    try:
        with trio.fail_after(10):
            with pytest.raises(AuthError):
                await store.ensure_container()
            with pytest.raises(AuthError) as caught:
                await store.put("secret", b"x")
        assert caught.value.name == "secret"
        assert store.retries == 0
    finally:
        await store.aclose()


SERVICE_OF = {"swift": "swift", "azure": "azurite"}


def url_of(backend: str, info: dict) -> str:
    make = swift_url if backend == "swift" else azure_url
    return make(info, fresh_container())


@pytest.mark.parametrize("backend", REMOTE)
async def test_server_stopped_mid_test(backend: str, dedicated_service):
    kind = SERVICE_OF[backend]
    info, directory = dedicated_service(kind)
    store = open_store(url_of(backend, info), RetryPolicy(attempts=4, base_delay=0.05))
    try:
        await store.ensure_container()
        await store.put("kept", b"before the outage")

        await trio.to_thread.run_sync(services.stop, kind, directory)
        with trio.fail_after(60):
            with pytest.raises(Unavailable) as caught:
                await store.get("kept")
        assert caught.value.name == "kept"
        assert "failed 4 times" in str(caught.value)
        assert store.retries == 3

        await trio.to_thread.run_sync(services.start, kind, directory)
        assert await store.get("kept") == b"before the outage"
    finally:
        await store.aclose()


FRONT_PROCESS = {"swift": "swift-proxy", "azure": "azurite"}


@pytest.mark.parametrize("backend", REMOTE)
async def test_server_that_hangs_times_out_then_unavailable(backend: str, dedicated_service):
    """A frozen server (SIGSTOP) is a timeout: retried, then Unavailable; fine once thawed."""
    info, directory = dedicated_service(SERVICE_OF[backend])
    pid = int((directory / f"{FRONT_PROCESS[backend]}.pid").read_text())
    url = url_of(backend, info) + "&timeout=1"
    store = open_store(url, RetryPolicy(attempts=3, base_delay=0.05))
    try:
        await store.ensure_container()
        await store.put("kept", b"before the freeze")
        os.kill(pid, signal.SIGSTOP)
        try:
            with trio.fail_after(30):
                with pytest.raises(Unavailable) as caught:
                    await store.get("kept")
            assert caught.value.name == "kept"
            assert store.retries == 2
        finally:
            os.kill(pid, signal.SIGCONT)
        assert await store.get("kept") == b"before the freeze"
    finally:
        await store.aclose()


def faulty(url: str, **faults) -> RetryingStore:
    """A retrying store over a backend that fails on purpose."""
    return RetryingStore(
        FaultyStore(open_raw(url), Faults(seed=1, **faults)),
        RetryPolicy(attempts=12, base_delay=0.001, max_delay=0.01),
    )


async def test_retries_absorb_a_30_percent_error_rate(store_url: str, store):
    flaky = faulty(store_url, error_rate=0.3)
    try:
        for i in range(40):
            await flaky.put(f"f/{i}", str(i).encode())
        for i in range(0, 40, 2):
            await flaky.delete(f"f/{i}")
        for i in range(40):
            await flaky.put(f"once/{i}", b"mine", if_absent=True)
        assert [x.name async for x in flaky.list("f/", page_size=7)] == sorted(
            f"f/{i}" for i in range(1, 40, 2)
        )
        assert all([await flaky.get(f"f/{i}") == str(i).encode() for i in range(1, 40, 2)])
        assert flaky.inner.injected > 20
    finally:
        await flaky.aclose()


async def test_lost_reply_is_not_mistaken_for_a_conflict(store_url: str, store):
    """After a create or delete whose reply was lost, the retry sees its own work done."""
    flaky = faulty(store_url, lost_replies=1)
    try:
        await flaky.put("created", b"ours", if_absent=True)
        assert await store.get("created") == b"ours"
        flaky.inner._replies_to_lose = 1
        await flaky.delete("created")
        with pytest.raises(NotFound):
            await store.head("created")
        assert flaky.retries == 2
    finally:
        await flaky.aclose()


async def test_lost_reply_does_not_hide_a_real_conflict(store_url: str, store):
    await store.put("taken", b"theirs")
    flaky = faulty(store_url, failed_requests=1)
    try:
        with pytest.raises(AlreadyExists):
            await flaky.put("taken", b"ours", if_absent=True)
        assert await store.get("taken") == b"theirs"
        assert flaky.retries == 1
    finally:
        await flaky.aclose()


async def test_dropped_connections_resume(store_url: str, store):
    payload = pattern(5 * MiB + 123, seed=5)
    await store.put("big", payload)
    flaky = faulty(store_url, drop_after=MiB + 7, drop_rate=0.5)
    try:
        await flaky.put("big-copy", pattern(3 * MiB, seed=6))
        data = await flaky.get("big")
        assert digest([data]) == digest(payload.chunks())
        ranged = await flaky.get("big", 100, 4 * MiB)
        assert ranged == b"".join(payload.chunks())[100 : 100 + 4 * MiB]
        assert await store.get("big-copy") == b"".join(pattern(3 * MiB, seed=6).chunks())
        assert flaky.inner.injected > 0
    finally:
        await flaky.aclose()


async def test_permanent_errors_are_not_retried(store_url: str, store):
    flaky = faulty(store_url)
    try:
        with pytest.raises(NotFound):
            await flaky.get("missing")
        assert flaky.retries == 0
    finally:
        await flaky.aclose()


async def test_retry_budget_ends_in_unavailable(store_url: str, store):
    flaky = RetryingStore(
        FaultyStore(open_raw(store_url), Faults(failed_requests=TEST_POLICY.attempts)),
        TEST_POLICY,
    )
    try:
        with pytest.raises(Unavailable) as caught:
            await flaky.head("anything")
        assert caught.value.name == "anything"
        assert flaky.retries == TEST_POLICY.attempts - 1
    finally:
        await flaky.aclose()
