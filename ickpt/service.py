"""The ickpt RPC methods: a CheckpointStore served over objfs.rpc.

    get    {key}                          -> [version, value] | nil
    put    {key, value, expected}         -> {"version": v} | {"conflict": current}
    delete {key, expected}                -> {"deleted": true} | {"conflict": current}
    list   {prefix}                       -> [key, ...]

A conflict is an ordinary answer, not an error, because it carries the
current version the caller needs for its next compare-and-swap. Bad
arguments are `invalid`; a store that cannot serve is `store_unavailable`.
Each reply is sent only after the store returned, i.e. after the change is
durable.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ickpt.store import CheckpointStore, Conflict, StoreError
from objfs.rpc import InvalidArgument, RpcError
from objfs.rpc.args import arg
from objfs.rpc.server import Session

log = logging.getLogger(__name__)

STORE_UNAVAILABLE = "store_unavailable"

Handler = Callable[[Session, Any], Awaitable[Any]]


def _guarded(method: Callable[[Any], Awaitable[Any]]) -> Handler:
    """Map the store's exceptions onto RPC answers and errors."""

    async def handler(session: Session, args: Any) -> Any:
        try:
            return await method(args)
        except Conflict as conflict:
            return {"conflict": conflict.current_version}
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from exc
        except StoreError as exc:
            log.error("store failed: %s", exc)
            raise RpcError(STORE_UNAVAILABLE, str(exc)) from exc

    return handler


def handlers(store: CheckpointStore) -> dict[str, Handler]:
    async def get(args: Any) -> Any:
        found = await store.get(arg(args, "key", str))
        return None if found is None else list(found)

    async def put(args: Any) -> Any:
        key, value = arg(args, "key", str), arg(args, "value", bytes)
        return {"version": await store.put(key, value, arg(args, "expected", int))}

    async def delete(args: Any) -> Any:
        await store.delete(arg(args, "key", str), arg(args, "expected", int))
        return {"deleted": True}

    async def list_keys(args: Any) -> Any:
        return await store.list(arg(args, "prefix", str))

    methods = {"get": get, "put": put, "delete": delete, "list": list_keys}
    return {name: _guarded(method) for name, method in methods.items()}
