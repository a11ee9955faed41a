"""Checking the arguments of an RPC: a wrong one is `invalid`, naming itself."""

from __future__ import annotations

from typing import Any

from objfs.rpc.errors import InvalidArgument

_MISSING = object()
MAX_U64 = (1 << 64) - 1


def arg(args: Any, name: str, kind: type | tuple[type, ...], default: Any = _MISSING) -> Any:
    """`args[name]`, which must be of `kind` (bool is not an int here)."""
    if not isinstance(args, dict):
        raise InvalidArgument("arguments must be a map")
    value = args.get(name, default)
    if value is _MISSING:
        raise InvalidArgument(f"argument {name!r} is missing")
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if value is default and default is not _MISSING:
        return value
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise InvalidArgument(f"argument {name!r} must be {names}")
    return value


def number(args: Any, name: str, low: int = 0, high: int = MAX_U64) -> int:
    """An integer argument in [low, high]."""
    value = arg(args, name, int)
    if not low <= value <= high:
        raise InvalidArgument(f"argument {name!r} must be in [{low}, {high}], got {value}")
    return value


def pairs(args: Any, name: str) -> dict[int, int]:
    """An optional [[u64, u64], ...] argument as a map; keys may not repeat."""
    result: dict[int, int] = {}
    for item in arg(args, name, list, []):
        if not (isinstance(item, list) and len(item) == 2):
            raise InvalidArgument(f"argument {name!r} must be a list of [key, value] pairs")
        key, value = (number({"v": v}, "v") for v in item)
        if key in result:
            raise InvalidArgument(f"argument {name!r} repeats {key}")
        result[key] = value
    return result
