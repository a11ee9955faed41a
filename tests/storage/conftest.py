"""Stores for the conformance suite: one fresh container per test, on every backend."""

from __future__ import annotations

import pytest

from objfs.storage import ObjectStore, RetryPolicy, open_store

from .backends import BACKENDS, TEST_POLICY, azure_url, fresh_container, swift_url


@pytest.fixture
def url_for(request, tmp_path):
    """url_for(backend) -> the URL of a new, empty container of that backend."""

    def make(backend: str) -> str:
        container = fresh_container()
        if backend == "file":
            return f"file://{tmp_path / container}"
        if backend == "mem":
            return f"mem://{container}"
        if backend == "swift":
            return swift_url(request.getfixturevalue("swift_service"), container)
        return azure_url(request.getfixturevalue("azurite_service"), container)

    return make


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def store_url(backend, url_for) -> str:
    return url_for(backend)


@pytest.fixture
async def open_test_store(store_url):
    """open_test_store() -> another client of the test's container (closed after the test)."""
    opened: list[ObjectStore] = []

    async def make(policy: RetryPolicy = TEST_POLICY) -> ObjectStore:
        store = open_store(store_url, policy)
        opened.append(store)
        await store.ensure_container()
        return store

    yield make
    for store in opened:
        await store.aclose()


@pytest.fixture
async def store(open_test_store) -> ObjectStore:
    return await open_test_store()


@pytest.fixture(scope="module")
def monkeypatch_module():
    """A monkeypatch that hypothesis tests may use across their examples."""
    with pytest.MonkeyPatch.context() as patch:
        yield patch
