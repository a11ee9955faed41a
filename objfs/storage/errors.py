"""Typed errors of the object-storage layer.

Every error names the object (or container) it is about, so a log line or an
EIO at the mount can say exactly what failed.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of every object-storage failure."""

    def __init__(self, message: str, name: str | None = None) -> None:
        self.name = name
        super().__init__(f"{message}: {name!r}" if name is not None else message)


class NotFound(StorageError):
    """The object (or the container) does not exist."""


class AlreadyExists(StorageError):
    """put(if_absent=True) lost: another writer created the object first."""


class AuthError(StorageError):
    """Credentials were refused or do not allow the operation. Never retried."""


class InvalidName(StorageError, ValueError):
    """The object name breaks the rules every backend can honour."""


class ConfigError(StorageError, ValueError):
    """A storage URL or its credentials are malformed or incomplete."""


class TransientError(StorageError):
    """A failure worth retrying: 5xx, timeout, refused or reset connection."""


class Unavailable(StorageError):
    """Retries of a transient failure were exhausted; the last cause is chained."""
