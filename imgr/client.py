"""A mount's view of imgr: the RPCs of imgr.api as typed methods.

    async with ImgrClient.mount("127.0.0.1", 32356, "vol", token, on_interrupt) as imgr:
        first = await imgr.fetch_nonces("inode", 100)
        await imgr.lease(first, "exclusive")
        await imgr.put_entries({first: location}, referenced={...})
        await imgr.flush()

The context keeps the mount renewed and unmounts at exit. `on_interrupt(inode,
to)` is called for each lease interrupt; it must flush what the mount has of
the inode, and returning lets go of the lease (see imgr.api).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from layout.codec import Location
from objfs.rpc import RpcClient, RpcError

log = logging.getLogger(__name__)

InterruptHandler = Callable[[int, str], Awaitable[None]]


def _pairs(counts: dict[int, int] | None) -> list[list[int]]:
    return [[k, v] for k, v in sorted((counts or {}).items())]


class ImgrClient:
    def __init__(self, rpc: RpcClient, answer: dict[str, Any]) -> None:
        self.rpc = rpc
        self.mount_id: str = answer["mount"]
        self.volume_id: bytes = answer["volume_id"]
        self.root: int = answer["root"]
        self.renew_every: float = answer["renew_every"]

    @classmethod
    @asynccontextmanager
    async def mount(
        cls,
        host: str,
        port: int,
        volume: str,
        token: str,
        on_interrupt: InterruptHandler | None = None,
        **options: Any,
    ) -> AsyncIterator[ImgrClient]:
        async def interrupt(args: Any) -> None:
            if on_interrupt is not None:
                await on_interrupt(args["inode"], args["to"])

        upcalls = {"interrupt": interrupt}
        async with RpcClient.connect(host, port, upcalls=upcalls, **options) as rpc:
            client = cls(rpc, await rpc.call("Mount", {"volume": volume, "token": token}))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client._renew_loop)
                try:
                    yield client
                finally:
                    nursery.cancel_scope.cancel()
                    with trio.CancelScope(shield=True), trio.move_on_after(10):
                        await client._unmount()

    async def _renew_loop(self) -> None:
        while True:
            await trio.sleep(self.renew_every)
            try:
                await self.call("RenewMount")
            except RpcError as exc:
                log.warning("mount %s not renewed: %s", self.mount_id, exc)

    async def _unmount(self) -> None:
        try:
            await self.call("Unmount")
        except RpcError as exc:
            log.info("unmount of %s: %s", self.mount_id, exc)

    async def call(self, method: str, **args: Any) -> Any:
        return await self.rpc.call(method, {"mount": self.mount_id, **args})

    async def fetch_nonces(self, kind: str, count: int) -> int:
        return (await self.call("FetchNonceRange", kind=kind, count=count))["first"]

    async def get_entry(self, inode: int) -> Location:
        return Location(*await self.call("GetInodeTableEntry", inode=inode))

    async def put_entries(
        self,
        entries: dict[int, Location],
        *,
        delete: list[int] | None = None,
        objects: dict[int, int] | None = None,
        referenced: dict[int, int] | None = None,
        released: dict[int, int] | None = None,
    ) -> None:
        await self.call(
            "PutInodeTableEntries",
            entries=[[inode, loc.to_wire()] for inode, loc in entries.items()],
            delete=list(delete or []),
            objects=_pairs(objects),
            referenced=_pairs(referenced),
            released=_pairs(released),
        )

    async def delete_entry(self, inode: int) -> None:
        await self.call("DeleteInodeTableEntry", inode=inode)

    async def adjust_open(self, inode: int, delta: int) -> int:
        return (await self.call("AdjustInodeOpenCount", inode=inode, delta=delta))["open"]

    async def flush(self) -> int:
        return (await self.call("Flush"))["sequence"]

    async def lease(self, inode: int, op: str) -> str:
        return (await self.call("Lease", inode=inode, op=op))["mode"]
