"""Which imgr serves a volume: an owner record in ickpt, kept fresh by heartbeats.

A second imgr that finds a fresh heartbeat of another refuses to serve the
volume; after `owner_ttl` of silence it may take the volume over (its
compare-and-swap of the record, then of the checkpoint, fences the old
owner out). The same imgr (same id) restarted after a crash takes its
volume back at once. Heartbeat ages compare wall clocks of different
machines, so owner_ttl must be well above their clock skew.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time

from ickpt.store import CheckpointStore, Conflict, StoreError
from imgr.api import Fenced

log = logging.getLogger(__name__)


class VolumeBusy(Exception):
    """Another imgr serves the volume (its heartbeat is fresh)."""


def owner_key(volume: str) -> str:
    return f"objfs/volumes/{volume}/owner"


def checkpoint_key(volume: str) -> str:
    return f"objfs/volumes/{volume}/checkpoint"


def _record(me: str) -> bytes:
    fields = {"id": me, "host": socket.gethostname(), "pid": os.getpid(), "heartbeat": time.time()}
    return json.dumps(fields).encode()


def _owner(value: bytes) -> dict:
    try:
        found = json.loads(value)
        return found if isinstance(found, dict) else {}
    except ValueError:
        return {}


async def claim(ckpt: CheckpointStore, volume: str, me: str, ttl: float) -> int:
    """Become the volume's owner; the owner record's version. VolumeBusy if not."""
    key = owner_key(volume)
    found = await ckpt.get(key)
    expected = 0
    if found is not None:
        expected, value = found
        owner = _owner(value)
        age = time.time() - float(owner.get("heartbeat", 0))
        if owner.get("id") != me and age < ttl:
            raise VolumeBusy(
                f"volume {volume} is served by imgr {owner.get('id')!r} on "
                f"{owner.get('host')} (heartbeat {age:.1f}s ago, takeover after {ttl:g}s)"
            )
    try:
        return await ckpt.put(key, _record(me), expected)
    except Conflict:
        raise VolumeBusy(f"volume {volume}: another imgr claimed it at the same time") from None


async def heartbeat(ckpt: CheckpointStore, volume: str, me: str, version: int) -> int:
    """Refresh the record; Fenced if another imgr has taken the volume over."""
    key = owner_key(volume)
    try:
        return await ckpt.put(key, _record(me), version)
    except Conflict:
        found = await ckpt.get(key)
        if found is not None and _owner(found[1]).get("pid") == os.getpid() and _mine(found, me):
            return found[0]  # our own write, its answer lost (ickpt restarted)
        raise Fenced(f"volume {volume} was taken over by another imgr") from None


def _mine(found: tuple[int, bytes], me: str) -> bool:
    owner = _owner(found[1])
    return owner.get("id") == me and owner.get("host") == socket.gethostname()


async def give_up(ckpt: CheckpointStore, volume: str, version: int) -> None:
    """Stop owning (a clean stop): another imgr may serve it at once."""
    try:
        await ckpt.delete(owner_key(volume), version)
    except Conflict:
        log.warning("volume %s: owner record changed under us; left as it is", volume)
    except StoreError as exc:
        # Harmless: the record ages out after owner_ttl like a crashed owner's.
        log.warning("volume %s: owner record not removed: %s", volume, exc)
