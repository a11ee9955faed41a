"""Object storage: one async interface over file://, mem://, swift:// and azure://.

Start at `api.py` for the contract and `urls.py` for `open_store(url)`.
"""

from objfs.storage.api import (
    BytesPayload,
    FilePayload,
    GeneratedPayload,
    ListPage,
    ObjectInfo,
    ObjectReader,
    ObjectStore,
    Payload,
)
from objfs.storage.errors import (
    AlreadyExists,
    AuthError,
    ConfigError,
    InvalidName,
    NotFound,
    StorageError,
    TransientError,
    Unavailable,
)
from objfs.storage.faults import Faults, FaultyStore
from objfs.storage.retry import RetryingStore, RetryPolicy
from objfs.storage.urls import open_store

__all__ = [
    "AlreadyExists",
    "AuthError",
    "BytesPayload",
    "ConfigError",
    "FilePayload",
    "Faults",
    "FaultyStore",
    "GeneratedPayload",
    "InvalidName",
    "ListPage",
    "NotFound",
    "ObjectInfo",
    "ObjectReader",
    "ObjectStore",
    "Payload",
    "RetryPolicy",
    "RetryingStore",
    "StorageError",
    "TransientError",
    "Unavailable",
    "open_store",
]
