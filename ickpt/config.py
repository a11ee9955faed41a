"""ickpt's settings: flags, or a TOML file with the same keys (flags win).

    address = "127.0.0.1"        # where to listen
    port = 32357
    store = "file:///var/lib/objfs/ickpt.log"   # or "etcd://HOST:PORT[,HOST:PORT...][/PREFIX]"
    tls_cert = "/path/cert.pem"  # both or neither: serve TLS
    tls_key = "/path/key.pem"

Unknown keys and values of the wrong type are refused with the key named.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from ickpt.etcdstore import EtcdStore
from ickpt.logstore import LogStore
from ickpt.store import CheckpointStore

DEFAULT_STORE = f"file://{Path.home() / '.local/state/objfs/ickpt.log'}"


class ConfigError(ValueError):
    """A setting is missing, unknown or malformed; the message names it."""


@dataclass(frozen=True)
class Config:
    address: str = "127.0.0.1"
    port: int = 32357
    store: str = DEFAULT_STORE
    tls_cert: str | None = None
    tls_key: str | None = None


def from_toml(path: str) -> dict[str, object]:
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    known = {f.name: f for f in fields(Config)}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"config file {path}: unknown key {key!r}")
        wanted = int if key == "port" else str
        if type(value) is not wanted:
            raise ConfigError(f"config file {path}: {key} must be a {wanted.__name__}")
    return table


def load(args: argparse.Namespace) -> Config:
    """The config file's settings overridden by the flags that were given."""
    settings = from_toml(args.config) if args.config else {}
    for f in fields(Config):
        flag = getattr(args, f.name, None)
        if flag is not None:
            settings[f.name] = flag
    config = Config(**settings)
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ConfigError("tls_cert and tls_key go together")
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"port {config.port} is out of range")
    return config


async def open_store(url: str) -> CheckpointStore:
    """The store a --store URL names: file://PATH (the default) or etcd://HOST:PORT,..."""
    scheme, _, rest = url.partition("://")
    if scheme == "file" and rest:
        path = Path(rest)
        os.makedirs(path.parent, exist_ok=True)
        return await LogStore.open(path)
    if scheme == "etcd" and rest:
        members, _, prefix = rest.partition("/")
        endpoints = [f"http://{member}" for member in members.split(",")]
        return EtcdStore(endpoints, prefix=prefix) if prefix else EtcdStore(endpoints)
    raise ConfigError(f"store must be file://PATH or etcd://HOST:PORT[,...][/PREFIX], not {url!r}")
