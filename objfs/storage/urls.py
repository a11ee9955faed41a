"""Storage URLs: which backend, which container, and whose credentials.

    file:///ABS/DIR  file://REL/DIR      a local directory
    mem://NAME                           this process's memory (tests)
    swift://CONTAINER?auth_url=..&user=..&key=..
    swift://CONTAINER?storage_url=..&token=..
    azure://CONTAINER?connection_string=..
    azure://CONTAINER?account_url=..&account_key=..
    azure://CONTAINER?account_url=..&sas_token=..

Any credential missing from the URL is taken from the environment, then from
the credentials file (`$OBJFS_CREDENTIALS`, else
`~/.config/objfs/credentials.toml`), whose `[swift]` and `[azure]` tables use
the same keys as the URL. Every backend also takes `timeout` (seconds per
request), `connections` (requests in flight) and `retries` (attempts).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from objfs.storage.api import ObjectStore
from objfs.storage.errors import ConfigError
from objfs.storage.retry import RetryingStore, RetryPolicy

ENVIRONMENT = {
    "swift": {
        "auth_url": "ST_AUTH",
        "user": "ST_USER",
        "key": "ST_KEY",
        "storage_url": "OS_STORAGE_URL",
        "token": "OS_AUTH_TOKEN",
    },
    "azure": {
        "connection_string": "AZURE_STORAGE_CONNECTION_STRING",
        "account_url": "AZURE_STORAGE_ACCOUNT_URL",
        "account_key": "AZURE_STORAGE_KEY",
        "sas_token": "AZURE_STORAGE_SAS_TOKEN",
    },
}
COMMON = {
    "timeout": float,
    "connections": int,
    "retries": int,
    "fault_rate": float,  # for tests: fail this share of requests (objfs.storage.faults)
    "fault_latency": float,  # for tests: seconds added to every request
    "fault_seed": int,
}


def credentials_file() -> Path:
    configured = os.environ.get("OBJFS_CREDENTIALS")
    return Path(configured) if configured else Path.home() / ".config/objfs/credentials.toml"


def _from_file(scheme: str, path: Path) -> dict[str, str]:
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f).get(scheme, {})
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read credentials file {path}: {exc}") from exc
    if not isinstance(table, dict):
        raise ConfigError(f"credentials file {path}: [{scheme}] must be a table")
    return {str(k): str(v) for k, v in table.items()}


def parse(url: str) -> tuple[str, str, dict[str, str]]:
    """(scheme, container or path, parameters) with credentials filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme not in ("file", "mem", "swift", "azure"):
        raise ConfigError(f"unknown storage URL scheme {scheme!r} (file, mem, swift, azure)", url)
    where = unquote(parts.netloc + parts.path) if scheme == "file" else unquote(parts.netloc)
    if not where or (scheme != "file" and parts.path not in ("", "/")):
        raise ConfigError(f"a {scheme} URL names one container: {scheme}://CONTAINER", url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    allowed = set(ENVIRONMENT.get(scheme, {})) | set(COMMON)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ConfigError(f"unknown parameter {unknown[0]!r} in {scheme} URL", redact(url))
    for key, variable in ENVIRONMENT.get(scheme, {}).items():
        if key not in params and os.environ.get(variable):
            params[key] = os.environ[variable]
    for key, value in _from_file(scheme, credentials_file()).items():
        params.setdefault(key, value)
    return scheme, where, params


def redact(url: str) -> str:
    """The URL without query parameters (where secrets live)."""
    return url.split("?", 1)[0]


def _tuning(params: dict[str, str]) -> dict[str, float | int]:
    """Pop the parameters every backend shares, converted to numbers."""
    values: dict[str, float | int] = {}
    for key, kind in COMMON.items():
        if key in params:
            try:
                values[key] = kind(params.pop(key))
            except ValueError:
                raise ConfigError(f"parameter {key} must be a {kind.__name__}") from None
    return values


def _backend(scheme: str, where: str, params: dict[str, str], tuning: dict) -> ObjectStore:
    if scheme == "file":
        from objfs.storage.localdir import LocalDirStore

        return LocalDirStore(where)
    if scheme == "mem":
        from objfs.storage.mem import MemStore

        return MemStore(where)
    sizes = {"timeout": tuning["timeout"]} if "timeout" in tuning else {}
    if "connections" in tuning:
        sizes["max_connections"] = tuning["connections"]
    if scheme == "swift":
        from objfs.storage.swift import SwiftStore

        return SwiftStore(where, **params, **sizes)
    from objfs.storage.azure import AzureStore

    return AzureStore(where, **params, **sizes)


def _open(url: str) -> tuple[ObjectStore, dict[str, float | int]]:
    scheme, where, params = parse(url)
    tuning = _tuning(params)
    backend = _backend(scheme, where, params, tuning)
    if tuning.get("fault_rate") or tuning.get("fault_latency"):
        from objfs.storage.faults import Faults, FaultyStore

        seed = tuning.get("fault_seed")
        rate, latency = float(tuning.get("fault_rate", 0)), float(tuning.get("fault_latency", 0))
        faults = Faults(rate, latency, seed=None if seed is None else int(seed))
        backend = FaultyStore(backend, faults)
    return backend, tuning


def open_raw(url: str) -> ObjectStore:
    """The backend for `url` alone, without retries (for layering in tests)."""
    return _open(url)[0]


def open_store(url: str, policy: RetryPolicy | None = None) -> ObjectStore:
    """The store for `url`, retrying transient failures.

    Raises ConfigError with a one-line reason when the URL or its credentials
    are malformed; nothing is contacted until the first request.
    """
    backend, tuning = _open(url)
    if policy is None and "retries" in tuning:
        policy = RetryPolicy(attempts=int(tuning["retries"]))
    return RetryingStore(backend, policy)
