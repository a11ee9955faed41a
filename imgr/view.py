"""What the status pages (imgr.status) show of a running imgr: plain JSON-able dicts."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import trio

from layout.errors import LayoutError
from layout.records import InodeHead
from objfs.storage import StorageError
from objfs.storage.urls import redact

if TYPE_CHECKING:
    from imgr.daemon import Imgr


class StatusView:
    """imgr.status.StatusProvider over an Imgr."""

    def __init__(self, imgr: Imgr) -> None:
        self.imgr = imgr

    def config(self) -> dict:
        return self.imgr.config.redacted()

    def stats(self) -> dict:
        rpc = {m: vars(s).copy() for m, s in self.imgr.rpc_stats.items()}
        return {"uptime_seconds": self.imgr.uptime, "rpc": rpc}

    def volumes(self) -> list[dict]:
        shown = [volume.summary() for volume in self.imgr.served().values()]
        for name, (url, why) in self.imgr.failed().items():
            shown.append({"name": name, "url": url, "state": "failed", "reason": why})
        for item in shown:
            item["url"] = redact(item["url"])
        return shown

    def volume(self, name: str) -> dict | None:
        volume = self.imgr.served().get(name)
        if volume is None:
            return next((v for v in self.volumes() if v["name"] == name), None)
        shown = volume.summary()
        shown["url"] = redact(shown["url"])
        now = trio.current_time()
        held = Counter(row["mount"] for row in volume.leases.snapshot() if not row["waiting"])
        shown["mounts_detail"] = [m.summary(now, held[m.id]) for m in volume.mounts]
        shown["gc"] = volume.gc_summary()
        return shown

    async def inode(self, name: str, inode: int) -> dict | None:
        volume = self.imgr.served().get(name)
        if volume is None or volume.state_name != "serving":
            return None
        location = await volume.state.table.get(inode)
        if location is None:
            return None
        holders = volume.leases.holders(inode)
        shown: dict = {
            "inode": inode,
            "location": location.to_wire(),
            "leases": {mount: mode.value for mount, mode in holders.items()},
            "open": {m.id: m.opens[inode] for m in volume.mounts if inode in m.opens},
        }
        try:
            data = await volume.reader.read(location)
            shown["head"] = _head(InodeHead.decode(data, f"inode head in {location}"))
        except (LayoutError, StorageError) as exc:
            shown["error"] = str(exc)
        return shown

    def leases(self) -> list[dict]:
        rows = []
        for name, volume in self.imgr.served().items():
            rows += [{"volume": name, **row} for row in volume.leases.snapshot()]
        return rows


def _head(head: InodeHead) -> dict:
    return {
        "type": head.type.name.lower(),
        "mode": oct(head.mode),
        "uid": head.uid,
        "gid": head.gid,
        "size": head.size,
        "nlink": head.nlink,
        "mtime_ns": head.mtime_ns,
        "ctime_ns": head.ctime_ns,
        "links": [[parent, name.decode(errors="replace")] for parent, name in head.links],
        "xattrs": len(head.xattrs),
        "payload": head.payload.to_wire() if head.payload else None,
        "accounting": [[obj, nbytes] for obj, nbytes in sorted(head.accounting.items())],
    }
