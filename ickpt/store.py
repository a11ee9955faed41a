"""The checkpoint store interface shared by the ickpt storage back ends.

A store maps keys (non-empty UTF-8 strings of at most 1 KiB) to values (at most 64 KiB).
Every change is a compare-and-swap on the key's version:

* ``put(key, value, expected_version)`` succeeds only if the key's current version is
  ``expected_version`` (0 means "the key must not exist") and returns the new version;
* ``delete(key, expected_version)`` likewise;
* otherwise ``Conflict(current_version)`` is raised (``current_version`` is 0 if absent).

Versions come from one store-wide revision counter (like etcd's ``mod_revision``): each
mutation takes the next revision, so a key's versions strictly increase and are never
reused, not even after the key is deleted and created again. A method returns only once
its change is durable.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

MAX_KEY_BYTES = 1024
MAX_VALUE_BYTES = 64 * 1024


class StoreError(Exception):
    """The store cannot serve the request (I/O failure, unreachable service, bad data)."""


class Conflict(Exception):
    """A compare-and-swap found another version; ``current_version`` is 0 if absent."""

    def __init__(self, current_version: int) -> None:
        super().__init__(f"version conflict: current version is {current_version}")
        self.current_version = current_version


def check_key(key: str) -> bytes:
    """Return the UTF-8 encoding of key, or raise ValueError if it is not a valid key."""
    if not isinstance(key, str) or not key:
        raise ValueError("a key must be a non-empty string")
    try:
        raw = key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"key {key!r} is not valid UTF-8: {exc}") from exc
    if len(raw) > MAX_KEY_BYTES:
        raise ValueError(f"key is {len(raw)} bytes long; the limit is {MAX_KEY_BYTES} bytes")
    return raw


def check_value(value: bytes) -> None:
    """Raise ValueError unless value is bytes of at most 64 KiB."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ValueError(f"a value must be bytes, not {type(value).__name__}")
    if len(value) > MAX_VALUE_BYTES:
        raise ValueError(
            f"value is {len(value)} bytes long; the limit is {MAX_VALUE_BYTES} bytes (64 KiB)"
        )


def check_version(expected_version: int) -> None:
    if not isinstance(expected_version, int) or expected_version < 0:
        raise ValueError(f"expected_version must be an int >= 0, not {expected_version!r}")


class CheckpointStore(ABC):
    """A strictly consistent key-value store updated only by compare-and-swap."""

    @abstractmethod
    async def get(self, key: str) -> tuple[int, bytes] | None:
        """Return (version, value), or None if the key does not exist."""

    @abstractmethod
    async def put(self, key: str, value: bytes, expected_version: int) -> int:
        """Store value if the key's version is expected_version; return the new version."""

    @abstractmethod
    async def delete(self, key: str, expected_version: int) -> None:
        """Delete the key if its version is expected_version."""

    @abstractmethod
    async def list(self, prefix: str = "") -> list[str]:
        """Return the existing keys starting with prefix, sorted."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release the store's resources; the store cannot be used afterwards."""

    async def __aenter__(self) -> CheckpointStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
