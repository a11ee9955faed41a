"""RemoteStore: the CheckpointStore interface of an ickpt daemon, over the retry RPC.

imgr holds one of these; the same tests run against it as against the
stores themselves. Use it as an async context manager (it owns a connection
with a background task):

    async with RemoteStore("127.0.0.1", 32357) as store:
        version = await store.put("volume/v1", record, expected_version=0)
"""

from __future__ import annotations

import ssl
from contextlib import AsyncExitStack
from typing import Any

from ickpt.service import STORE_UNAVAILABLE
from ickpt.store import CheckpointStore, Conflict, StoreError, check_key, check_value, check_version
from objfs.rpc import InvalidArgument, ReconnectPolicy, RpcClient, RpcError

DEFAULT_PORT = 32357


class RemoteStore(CheckpointStore):
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        ssl_context: ssl.SSLContext | None = None,
        policy: ReconnectPolicy | None = None,
    ) -> None:
        self.host, self.port = host, port
        self._options = {"ssl_context": ssl_context, "policy": policy}
        self._stack = AsyncExitStack()
        self._client: RpcClient | None = None

    async def __aenter__(self) -> RemoteStore:
        self._client = await self._stack.enter_async_context(
            RpcClient.connect(self.host, self.port, **self._options)
        )
        return self

    async def _call(self, method: str, args: dict[str, Any]) -> Any:
        if self._client is None:
            raise StoreError("RemoteStore used outside 'async with'")
        try:
            return await self._client.call(method, args)
        except InvalidArgument as exc:
            raise ValueError(str(exc)) from exc
        except RpcError as exc:
            if exc.code == STORE_UNAVAILABLE:
                raise StoreError(str(exc)) from exc
            raise StoreError(f"ickpt at {self.host}:{self.port}: {exc}") from exc

    @staticmethod
    def _settled(answer: dict[str, Any], field: str) -> Any:
        if "conflict" in answer:
            raise Conflict(answer["conflict"])
        return answer[field]

    async def get(self, key: str) -> tuple[int, bytes] | None:
        check_key(key)
        found = await self._call("get", {"key": key})
        return None if found is None else (found[0], found[1])

    async def put(self, key: str, value: bytes, expected_version: int) -> int:
        check_key(key), check_value(value), check_version(expected_version)
        answer = await self._call(
            "put", {"key": key, "value": bytes(value), "expected": expected_version}
        )
        return self._settled(answer, "version")

    async def delete(self, key: str, expected_version: int) -> None:
        check_key(key), check_version(expected_version)
        self._settled(
            await self._call("delete", {"key": key, "expected": expected_version}), "deleted"
        )

    async def list(self, prefix: str = "") -> list[str]:
        return await self._call("list", {"prefix": prefix})

    async def aclose(self) -> None:
        self._client = None
        await self._stack.aclose()
