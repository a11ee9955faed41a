"""URLs of fresh containers on each backend, for the storage tests."""

from __future__ import annotations

import uuid
from urllib.parse import quote

from objfs.storage import RetryPolicy

BACKENDS = ["file", "mem", "swift", "azure"]
REMOTE = ["swift", "azure"]

# Fail fast in tests: a handful of quick retries, not minutes of back-off.
TEST_POLICY = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.1)


def swift_url(info: dict, container: str, **params: str) -> str:
    params = params or {"auth_url": info["auth_url"], "user": info["user"], "key": info["key"]}
    return f"swift://{container}?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())


def azure_url(info: dict, container: str, **params: str) -> str:
    params = params or {"connection_string": info["connection_string"]}
    return f"azure://{container}?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())


def fresh_container() -> str:
    return f"t-{uuid.uuid4().hex[:16]}"
