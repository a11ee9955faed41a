"""ickpt's settings: flags, or a TOML file with the same keys (flags win).

    address = "127.0.0.1"        # where to listen
    port = 32357
    store = "file:///var/lib/objfs/ickpt.log"   # or "etcd://HOST:PORT[,HOST:PORT...][/PREFIX]"
    tls_cert = "/path/cert.pem"  # both or neither: serve TLS
    tls_key = "/path/key.pem"

Every key is also a flag (`--tls-cert` for tls_cert) and every flag but
--config a key. The file is read by objfs.settings, as iclient's and imgr's
are: unknown keys and values of the wrong type or out of range are refused
with the key named.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from ickpt.logstore import LogStore
from ickpt.store import CheckpointStore
from objfs import settings
from objfs.settings import SettingsError as ConfigError

DEFAULT_STORE = f"file://{Path.home() / '.local/state/objfs/ickpt.log'}"


@dataclass(frozen=True)
class Config:
    address: str = "127.0.0.1"
    port: int = 32357
    store: str = DEFAULT_STORE
    tls_cert: str = ""  # empty: plain TCP
    tls_key: str = ""


def load(args: argparse.Namespace) -> Config:
    """The config file's settings overridden by the flags that were given."""
    config = settings.load(Config, args.config, vars(args))
    if bool(config.tls_cert) != bool(config.tls_key):
        raise ConfigError("tls_cert and tls_key go together")
    settings.check_port("port", config.port)
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
        from ickpt.etcdstore import EtcdStore  # its HTTP client loads only for etcd stores

        return EtcdStore(endpoints, prefix=prefix) if prefix else EtcdStore(endpoints)
    raise ConfigError(f"store must be file://PATH or etcd://HOST:PORT[,...][/PREFIX], not {url!r}")
