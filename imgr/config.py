"""imgr's settings: flags, or a TOML file with the same keys (flags win).

    address = "127.0.0.1"         # RPC listen address
    port = 32356
    http_address = "127.0.0.1"    # status pages and /metrics
    http_port = 15346
    ickpt = "127.0.0.1:32357"     # the checkpoint service
    id = "host-a"                 # this imgr's name in volume ownership records
    checkpoint_interval = 5.0     # seconds between checkpoints of a changed volume
    lease_timeout = 10.0          # a holder must answer a lease interrupt within this
    mount_ttl = 60.0              # a mount not renewed within this is expelled
    owner_ttl = 30.0              # another imgr may take a volume over after this silence
    cache_mib = 64                # memory for decoded inode-table pages, per volume

    [volumes.NAME]                # served from start
    url = "swift://container?..."
    secret = "..."                # the mount token of file:// and mem:// volumes

Every key is also a flag of `imgr run` (`--checkpoint-interval` for
checkpoint_interval) and every flag but --config a key, except the volumes:
`--volume NAME=URL` (repeatable) adds `[volumes.NAME]` with that url and no
secret, so a file:// or mem:// volume, which needs a secret, is given in the
file. The file is read by objfs.settings, as ickpt's and iclient's are:
unknown keys and values of the wrong type or out of range are refused with
the key named.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import socket
from dataclasses import dataclass, field, fields

from imgr.api import DEFAULT_HTTP_PORT, DEFAULT_PORT
from objfs import settings
from objfs.settings import SettingsError as ConfigError

VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


@dataclass(frozen=True)
class VolumeSpec:
    name: str
    url: str
    secret: str | None = None


@dataclass(frozen=True)
class Config:
    address: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    http_address: str = "127.0.0.1"
    http_port: int = DEFAULT_HTTP_PORT
    ickpt: str = "127.0.0.1:32357"
    id: str = ""
    checkpoint_interval: float = 5.0
    lease_timeout: float = 10.0
    mount_ttl: float = 60.0
    owner_ttl: float = 30.0
    cache_mib: int = 64
    volumes: tuple[VolumeSpec, ...] = field(default_factory=tuple)

    @property
    def ickpt_address(self) -> tuple[str, int]:
        return settings.host_port("ickpt", self.ickpt)

    def redacted(self) -> dict:
        """For /config: every setting, with no secret and no credential in a URL."""
        from objfs.storage.urls import redact

        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "volumes"}
        shown["volumes"] = [{"name": v.name, "url": redact(v.url)} for v in self.volumes]
        return shown


_POSITIVE = ("checkpoint_interval", "lease_timeout", "mount_ttl", "owner_ttl", "cache_mib")


def check_volume_name(name: str) -> str:
    if not isinstance(name, str) or not VOLUME_NAME.fullmatch(name):
        raise ConfigError(f"volume name {name!r:.70} must be 1-63 of [A-Za-z0-9._-]")
    return name


def _volumes(table: object, path: str | None) -> tuple[VolumeSpec, ...]:
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: volumes must be a table of tables")
    specs = []
    for name, spec in table.items():
        check_volume_name(name)
        if not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
            raise ConfigError(f"config file {path}: volumes.{name} needs a url string")
        unknown = set(spec) - {"url", "secret"}
        if unknown:
            raise ConfigError(f"config file {path}: volumes.{name}: unknown key {min(unknown)!r}")
        if not isinstance(spec.get("secret", ""), str):
            raise ConfigError(f"config file {path}: volumes.{name}.secret must be a string")
        specs.append(VolumeSpec(name, spec["url"], spec.get("secret")))
    return tuple(specs)


def load(args: argparse.Namespace) -> Config:
    """The config file's settings overridden by the flags that were given."""
    path = getattr(args, "config", None)
    table = settings.from_toml(path) if path else {}
    from_file = _volumes(table.pop("volumes"), path) if "volumes" in table else ()
    config = settings.from_table(Config, table, path, vars(args))
    extra = tuple(_volume_flag(v) for v in getattr(args, "volume", None) or ())
    config = dataclasses.replace(config, volumes=from_file + extra)
    if not config.id:
        config = dataclasses.replace(config, id=f"{socket.gethostname()}:{config.port}")
    _check(config)
    return config


def _volume_flag(text: str) -> VolumeSpec:
    name, sep, url = text.partition("=")
    if not sep or not url:
        raise ConfigError(f"--volume wants NAME=URL, got {text!r:.70}")
    return VolumeSpec(check_volume_name(name), url)


def _check(config: Config) -> None:
    settings.check_port("port", config.port)
    settings.check_port("http_port", config.http_port)
    settings.host_port("ickpt", config.ickpt)
    for name in _POSITIVE:
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name} must be above 0")
    names = [v.name for v in config.volumes]
    if len(set(names)) != len(names):
        raise ConfigError("a volume is named twice")
