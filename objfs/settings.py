"""Daemon settings from a TOML file and flags (flags win), checked against a dataclass.

A settings class is a frozen dataclass whose fields have defaults and types
int, float, str, bool or list[str]; `load(cls, path, flags)` refuses unknown
keys and wrong types with one line naming the key. A daemon with tables of
its own (imgr's `[volumes.NAME]`) takes them out of `from_toml`'s table and
passes the rest to `from_table`. `check_port` and `host_port` check values
the same way for every daemon.
"""

from __future__ import annotations

import dataclasses
import tomllib
from typing import Any, TypeVar, get_type_hints

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting is unknown or malformed; the message names it."""


def from_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"cannot read config file {path}: {exc}") from exc


def load(cls: type[T], path: str | None, flags: dict[str, Any]) -> T:
    """`cls` from the file at `path` (if any), with the non-None `flags` on top."""
    return from_table(cls, from_toml(path) if path else {}, path, flags)


def from_table(cls: type[T], table: dict[str, Any], path: str | None, flags: dict[str, Any]) -> T:
    """`cls` from a config file's `table` (already read from `path`), with `flags` on top."""
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    settings: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise SettingsError(f"config file {path}: unknown key {key!r}")
        settings[key] = _typed(key, value, hints[key], f"config file {path}: ")
    settings.update({k: v for k, v in flags.items() if v is not None and k in known})
    return cls(**settings)


def check_port(key: str, port: int) -> None:
    if not 0 <= port <= 65535:
        raise SettingsError(f"{key} must be a port number (0-65535), not {port}")


def host_port(key: str, text: str) -> tuple[str, int]:
    """A HOST:PORT setting split, or SettingsError naming `key`."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise SettingsError(f"{key} must be HOST:PORT, not {text!r}")
    check_port(key, int(port))
    return host, int(port)


_KINDS: dict[Any, str] = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "true or false",
    list[str]: "a list of strings",
}


def _typed(key: str, value: Any, hint: Any, where: str) -> Any:
    if hint is float and type(value) in (int, float):
        return float(value)
    if hint == list[str] and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    if type(value) is hint:
        return value
    raise SettingsError(f"{where}{key} must be {_KINDS[hint]}")
