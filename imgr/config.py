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

Unknown keys and values of the wrong type are refused with the key named.
"""

from __future__ import annotations

import argparse
import re
import socket
import tomllib
from dataclasses import dataclass, field, fields

from imgr.api import DEFAULT_HTTP_PORT, DEFAULT_PORT

VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


class ConfigError(ValueError):
    """A setting is missing, unknown or malformed; the message names it."""


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
        host, _, port = self.ickpt.rpartition(":")
        return host, int(port)

    def redacted(self) -> dict:
        """For /config: every setting, with no secret and no credential in a URL."""
        from objfs.storage.urls import redact

        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "volumes"}
        shown["volumes"] = [{"name": v.name, "url": redact(v.url)} for v in self.volumes]
        return shown


_KINDS = {"port": int, "http_port": int, "cache_mib": int}
_FLOATS = {"checkpoint_interval", "lease_timeout", "mount_ttl", "owner_ttl"}


def check_volume_name(name: str) -> str:
    if not isinstance(name, str) or not VOLUME_NAME.fullmatch(name):
        raise ConfigError(f"volume name {name!r:.70} must be 1-63 of [A-Za-z0-9._-]")
    return name


def _volumes(table: object, path: str) -> tuple[VolumeSpec, ...]:
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
        specs.append(VolumeSpec(name, spec["url"], spec.get("secret")))
    return tuple(specs)


def from_toml(path: str) -> dict[str, object]:
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    known = {f.name for f in fields(Config)}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"config file {path}: unknown key {key!r}")
        if key in _FLOATS and type(value) in (int, float):
            table[key] = float(value)
        elif key not in _FLOATS and key != "volumes" and type(value) is not _KINDS.get(key, str):
            raise ConfigError(f"config file {path}: {key} has the wrong type")
        elif key in _FLOATS:
            raise ConfigError(f"config file {path}: {key} must be a number")
    if "volumes" in table:
        table["volumes"] = _volumes(table["volumes"], path)
    return table


def load(args: argparse.Namespace) -> Config:
    """The config file's settings overridden by the flags that were given."""
    settings = from_toml(args.config) if getattr(args, "config", None) else {}
    for f in fields(Config):
        flag = getattr(args, f.name, None)
        if flag is not None and f.name != "volumes":
            settings[f.name] = flag
    extra = tuple(_volume_flag(v) for v in getattr(args, "volume", None) or ())
    settings["volumes"] = tuple(settings.get("volumes", ())) + extra
    config = Config(**settings)
    if not config.id:
        config = Config(**{**settings, "id": f"{socket.gethostname()}:{config.port}"})
    _check(config)
    return config


def _volume_flag(text: str) -> VolumeSpec:
    name, sep, url = text.partition("=")
    if not sep or not url:
        raise ConfigError(f"--volume wants NAME=URL, got {text!r:.70}")
    return VolumeSpec(check_volume_name(name), url)


def _check(config: Config) -> None:
    for port in (config.port, config.http_port):
        if not 0 <= port <= 65535:
            raise ConfigError(f"port {port} is out of range")
    host, sep, port = config.ickpt.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"ickpt must be HOST:PORT, not {config.ickpt!r}")
    for name in _FLOATS:
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name} must be above 0")
    names = [v.name for v in config.volumes]
    if len(set(names)) != len(names):
        raise ConfigError("a volume is named twice")
