"""The mounts of one volume: who they are, whether they are alive, what they hold open.

Mount ids are "VOLUME/RANDOM", so a call names its volume by its mount id.
A mount is alive while it renews within the mount TTL and answers lease
interrupts. Once expelled it keeps a tombstone (so its calls get a clear
`expelled` instead of "unknown mount") for a while, and nothing else.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import trio

from imgr.api import Expelled

log = logging.getLogger(__name__)

TOMBSTONE_TTLS = 10  # tombstones live this many mount TTLs


@dataclass
class Mount:
    id: str
    client_id: str  # the RPC client, for upcalls
    peer: str
    started: float
    renewed: float
    opens: dict[int, int] = field(default_factory=dict)  # inode -> open count
    expelled: str | None = None

    def summary(self, now: float, leases: int) -> dict:
        return {
            "id": self.id,
            "peer": self.peer,
            "age_seconds": round(now - self.started, 3),
            "renewed_seconds_ago": round(now - self.renewed, 3),
            "expelled": self.expelled is not None,
            "reason": self.expelled,
            "leases": leases,
            "open": sum(self.opens.values()),
        }


class Mounts:
    def __init__(self, volume: str, ttl: float) -> None:
        self.volume = volume
        self.ttl = ttl
        self._mounts: dict[str, Mount] = {}
        self.expulsions = 0

    def add(self, client_id: str, peer: str) -> Mount:
        now = trio.current_time()
        mount = Mount(f"{self.volume}/{uuid.uuid4().hex}", client_id, peer, now, now)
        self._mounts[mount.id] = mount
        return mount

    def live(self, mount_id: str) -> Mount:
        """The mount, alive; Expelled for an expelled or unknown one."""
        mount = self._mounts.get(mount_id)
        if mount is None:
            raise Expelled(f"unknown mount {mount_id!r:.40} (imgr restarted?): mount again")
        if mount.expelled is not None:
            raise Expelled(f"mount {mount_id} was expelled: {mount.expelled}")
        return mount

    def get(self, mount_id: str) -> Mount | None:
        return self._mounts.get(mount_id)

    def __iter__(self) -> Iterator[Mount]:
        return iter(list(self._mounts.values()))

    def alive(self) -> list[Mount]:
        return [m for m in self._mounts.values() if m.expelled is None]

    def expel(self, mount: Mount, reason: str) -> dict[int, int]:
        """Mark it expelled; the open counts it held, for the caller to drop."""
        log.warning("mount %s (%s) expelled: %s", mount.id, mount.peer, reason)
        mount.expelled = reason
        self.expulsions += 1
        opens, mount.opens = mount.opens, {}
        return opens

    def remove(self, mount: Mount) -> dict[int, int]:
        del self._mounts[mount.id]
        return mount.opens

    def overdue(self) -> list[Mount]:
        """Live mounts not renewed within the TTL; forgets old tombstones."""
        now = trio.current_time()
        for mount in list(self._mounts.values()):
            if mount.expelled is not None and now - mount.renewed > TOMBSTONE_TTLS * self.ttl:
                del self._mounts[mount.id]
        return [m for m in self.alive() if now - m.renewed > self.ttl]

    def open_anywhere(self, inode: int) -> bool:
        return any(inode in m.opens for m in self._mounts.values())
