"""imgr's RPC methods (see imgr.api): check the arguments, find the volume, call it.

Every handler is counted (calls, errors, seconds) for /stats and /metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imgr.api import LEASE_OPS, NONCE_KINDS
from imgr.volume import Batch, Volume
from layout.codec import Location
from layout.errors import LayoutError
from objfs.rpc import InvalidArgument, Session
from objfs.rpc.args import arg, number, pairs

if TYPE_CHECKING:
    from imgr.daemon import Imgr

log = logging.getLogger(__name__)

Handler = Callable[[Session, Any], Awaitable[Any]]


@dataclass
class MethodStats:
    calls: int = 0
    errors: int = 0
    seconds: float = 0.0


def _counted(name: str, method: Handler, stats: dict[str, MethodStats]) -> Handler:
    counts = stats.setdefault(name, MethodStats())

    async def handler(session: Session, args: Any) -> Any:
        counts.calls += 1
        start = time.perf_counter()
        try:
            return await method(session, args)
        except BaseException:
            counts.errors += 1
            raise
        finally:
            counts.seconds += time.perf_counter() - start

    return handler


def _location(wire: Any) -> Location:
    try:
        location = Location.from_wire(wire, "argument")
    except LayoutError as exc:
        raise InvalidArgument(str(exc)) from None
    if location.object == 0:
        raise InvalidArgument("a head cannot live in object 0")
    return location


def _batch(args: Any) -> Batch:
    entries: dict[int, Location] = {}
    for item in arg(args, "entries", list, []):
        if not (isinstance(item, list) and len(item) == 2):
            raise InvalidArgument("entries must be [[inode, location], ...]")
        inode = number({"inode": item[0]}, "inode", 1)
        if inode in entries:
            raise InvalidArgument(f"entries name inode {inode} twice")
        entries[inode] = _location(item[1])
    deletes = [number({"inode": i}, "inode", 1) for i in arg(args, "delete", list, [])]
    return Batch(
        entries, deletes, pairs(args, "objects"), pairs(args, "referenced"), pairs(args, "released")
    )


def handlers(imgr: Imgr, stats: dict[str, MethodStats]) -> dict[str, Handler]:
    def volume_of(args: Any) -> tuple[Volume, str]:
        mount_id = arg(args, "mount", str)
        return imgr.volume(mount_id.partition("/")[0]), mount_id

    async def mount(session: Session, args: Any) -> Any:
        volume = imgr.volume(arg(args, "volume", str))
        m = await volume.mount(session, arg(args, "token", str))
        return {
            "mount": m.id,
            "volume_id": volume.state.volume_id,
            "root": 1,
            "renew_every": volume.timing.mount_ttl / 3,
        }

    async def renew(session: Session, args: Any) -> Any:
        volume, mount_id = volume_of(args)
        volume.renew(mount_id)
        return {}

    async def unmount(session: Session, args: Any) -> Any:
        volume, mount_id = volume_of(args)
        await volume.unmount(mount_id)
        return {}

    async def fetch_nonces(session: Session, args: Any) -> Any:
        volume, mount_id = volume_of(args)
        kind = arg(args, "kind", str)
        if kind not in NONCE_KINDS:
            raise InvalidArgument(f"kind must be one of {NONCE_KINDS}")
        count = number(args, "count", 1, 1 << 16)
        return {"first": await volume.fetch_nonces(mount_id, kind, count), "count": count}

    async def get_entry(session: Session, args: Any) -> Any:
        volume, mount_id = volume_of(args)
        location = await volume.get_entry(mount_id, number(args, "inode", 1))
        return location.to_wire()

    async def put_entries(session: Session, args: Any) -> Any:
        volume, mount_id = volume_of(args)
        await volume.put_entries(mount_id, _batch(args))
        return {}

    async def delete_entry(session: Session, args: Any) -> Any:
        volume, mount_id = volume_of(args)
        await volume.delete_entry(mount_id, number(args, "inode", 1))
        return {}

    async def adjust_open(session: Session, args: Any) -> Any:
        volume, mount_id = volume_of(args)
        delta = number(args, "delta", -(1 << 31), 1 << 31)
        return {"open": await volume.adjust_open(mount_id, number(args, "inode", 1), delta)}

    async def flush(session: Session, args: Any) -> Any:
        volume, mount_id = volume_of(args)
        volume.live(mount_id)
        return {"sequence": await volume.flush()}

    async def lease(session: Session, args: Any) -> Any:
        volume, mount_id = volume_of(args)
        op = arg(args, "op", str)
        if op not in LEASE_OPS:
            raise InvalidArgument(f"op must be one of {LEASE_OPS}")
        mode = await volume.lease(mount_id, number(args, "inode", 1), op)
        return {"mode": mode.value}

    async def list_volumes(session: Session, args: Any) -> Any:
        return imgr.listing()

    async def serve_volume(session: Session, args: Any) -> Any:
        secret = arg(args, "secret", (str, type(None)), None)
        await imgr.serve_volume(arg(args, "name", str), arg(args, "url", str), secret)
        return {}

    async def stop_serving(session: Session, args: Any) -> Any:
        await imgr.stop_volume(arg(args, "name", str))
        return {}

    methods: dict[str, Handler] = {
        "Mount": mount,
        "RenewMount": renew,
        "Unmount": unmount,
        "FetchNonceRange": fetch_nonces,
        "GetInodeTableEntry": get_entry,
        "PutInodeTableEntries": put_entries,
        "DeleteInodeTableEntry": delete_entry,
        "AdjustInodeOpenCount": adjust_open,
        "Flush": flush,
        "Lease": lease,
        "ListVolumes": list_volumes,
        "ServeVolume": serve_volume,
        "StopServing": stop_serving,
    }
    return {name: _counted(name, method, stats) for name, method in methods.items()}
