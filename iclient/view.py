"""What the status pages (iclient.status) show of a running mount: plain JSON-able dicts.

Everything is read from the mount's live objects when asked. The status
server runs in the mount's own trio thread, and nothing here awaits, so each
answer is a consistent snapshot without any locking.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from iclient.inode import Inode
from iclient.inodes import NONE
from layout.codec import Location

if TYPE_CHECKING:
    from iclient.mount import Mount
    from iclient.wakeups import BusyPoll

MAX_LEASES = 10_000  # a page a browser and a script can still take whole


class MountView:
    """The status server's window on a Mount."""

    def __init__(self, mount: Mount, busy_poll: BusyPoll | None = None) -> None:
        self.mount = mount
        self.busy_poll = busy_poll

    @property
    def volume(self) -> str:
        return self.mount.config.settings.volume

    def config(self) -> dict[str, object]:
        return self.mount.config.redacted()

    def stats(self) -> dict[str, object]:
        """Every figure of the dashboard and /metrics; "ops" counts each operation ever made."""
        mount = self.mount
        fs = mount.fs
        segments = fs.data.segments
        limits = segments.limits
        blocks = fs.data.blocks
        cache = blocks.stats()
        looked_up = cache["read_cache_hits"] + cache["read_cache_misses"]
        return {
            "volume": self.volume,
            "volume_id": mount.imgr.volume_id.hex(),
            "mount_id": mount.imgr.mount_id,
            "mountpoint": mount.config.settings.mountpoint,
            "uptime_seconds": trio.current_time() - mount.started,
            "buffer": {
                # Dirty: acknowledged to writers but not yet in the object store.
                "dirty_bytes": segments.memory + segments.spilled,
                "memory_bytes": segments.memory,
                "memory_limit_bytes": limits.memory_bytes,
                "spilled_bytes": segments.spilled,
                "disk_limit_bytes": limits.disk_bytes,
                "segment_bytes": limits.segment_bytes,
                "uploads_in_flight": segments.uploading,
                "upload_slots": limits.uploads,
                "uploaded_bytes": segments.uploaded_bytes,
                "uploaded_objects": segments.uploaded_objects,
                "upload_retries": segments.upload_retries,
                "uncommitted_bytes": segments.unreported_bytes,
            },
            "read_cache": {
                "bytes": cache["read_cache_bytes"],
                "limit_bytes": blocks.max_bytes,
                "hits": cache["read_cache_hits"],
                "misses": cache["read_cache_misses"],
                # None until something was read: 0% would look like a broken cache.
                "hit_rate": cache["read_cache_hits"] / looked_up if looked_up else None,
                "fetched_bytes": cache["read_fetched_bytes"],
            },
            "inodes": fs.inodes.stats(),
            "commits": fs.committer.stats(),
            "ops": dict(fs.ops),
            "busy_poll": self._busy_poll(),
        }

    def _busy_poll(self) -> dict[str, object]:
        busy = self.busy_poll
        if busy is None:
            return {"rate": 0, "held": False, "holds": 0, "refused": ""}
        return {"rate": busy.rate, "held": busy.held, "holds": busy.holds, "refused": busy.refused}

    def leases(self, limit: int = MAX_LEASES) -> dict[str, object]:
        """The held inodes under a lease, lowest numbers first, at most `limit` of them."""
        held = [inode for inode in self.mount.fs.inodes.held.values() if inode.lease != NONE]
        held.sort(key=lambda inode: inode.number)
        return {
            "count": len(held),
            "truncated": len(held) > limit,
            "leases": [
                {
                    "inode": inode.number,
                    "mode": inode.lease,
                    "dirty": inode.dirty,
                    "opens": inode.opens,
                }
                for inode in held[:limit]
            ],
        }

    def inode(self, number: int) -> dict[str, object] | None:
        """A held inode's head and its state in this mount; None unless held here."""
        inodes = self.mount.fs.inodes
        inode = inodes.held.get(number)
        if inode is None:
            return None
        return {**_head(inode), **_state(inode, inodes.locations.get(number))}


def _head(inode: Inode) -> dict[str, object]:
    head = inode.head
    return {
        "inode": head.inode,
        "type": head.type.name.lower(),
        "mode": oct(head.mode),
        "uid": head.uid,
        "gid": head.gid,
        "size": head.size,
        "rdev": head.rdev,
        "nlink": head.nlink,
        "atime_ns": head.atime_ns,
        "mtime_ns": head.mtime_ns,
        "ctime_ns": head.ctime_ns,
        "btime_ns": head.btime_ns,
        "links": [[parent, name_text(name)] for parent, name in head.links],
        "xattrs": sorted(name_text(name) for name in head.xattrs),
        "symlink": None if head.symlink is None else name_text(head.symlink),
        "payload": _location(head.payload),
    }


def _state(inode: Inode, loaded_from: Location | None) -> dict[str, object]:
    return {
        # The live figures, ahead of the head's copy until the next commit.
        "accounting": [[obj, nbytes] for obj, nbytes in sorted(inode.accounting.items())],
        "lease": inode.lease,
        "dirty": inode.dirty,
        "fresh": inode.fresh,
        "opens": inode.opens,
        "lookups": inode.lookups,
        "loaded_from": _location(loaded_from),
    }


def name_text(name: bytes) -> str:
    """A file name as JSON can carry it.

    Names are bytes and need not be UTF-8; surrogateescape keeps every byte,
    so a script gets the name back with .encode("utf-8", "surrogateescape").
    """
    return name.decode("utf-8", "surrogateescape")


def _location(location: Location | None) -> dict[str, int] | None:
    if location is None:
        return None
    return {"object": location.object, "offset": location.offset, "length": location.length}
