"""The server's memory of one client's requests, which makes a resent request run once.

For each client the server keeps the encoded replies of completed requests
(in completion order), the ids of requests still running, and enough about
dropped replies to refuse — rather than rerun — a request resent after its
reply was dropped:

- a reply is dropped when the client acknowledges it (its "ack" moved past
  the id: the client has it), when it is older than the TTL, or when the
  table holds more than `max_replies`;
- ids dropped before the client acknowledged them are remembered as
  "forgotten"; the forgotten set is itself bounded, and when it overflows
  its lowest ids fold into a horizon: everything below it counts as forgotten;
- a resent request for a forgotten id is answered with `reply_expired`.

So a request never runs twice while the server lives; at worst a client that
was away longer than the TTL gets a clear error for a request whose fate is
unknown.
"""

from __future__ import annotations

import enum
from collections import OrderedDict


class Status(enum.Enum):
    NEW = "new"  # never seen: run it
    RUNNING = "running"  # its reply goes to the client's connection when it completes
    EXPIRED = "expired"  # seen, and its reply is gone


class ReplyTable:
    """Completed replies and running requests of one client; times come from the caller."""

    def __init__(self, max_replies: int, ttl: float, max_forgotten: int | None = None) -> None:
        self.max_replies = max_replies
        self.ttl = ttl
        self.max_forgotten = max_forgotten if max_forgotten is not None else 16 * max_replies
        self._replies: OrderedDict[int, tuple[float, bytes]] = OrderedDict()
        self._running: set[int] = set()
        self._forgotten: set[int] = set()
        self.floor = 0  # the client holds every reply below this id
        self._horizon = 0  # every id below this that is not stored counts as forgotten

    def __len__(self) -> int:
        return len(self._replies)

    @property
    def running(self) -> int:
        return len(self._running)

    def ids(self) -> list[int]:
        """Ids of the stored replies, oldest first."""
        return list(self._replies)

    def acknowledge(self, ack: int) -> None:
        """The client holds every reply below `ack`."""
        if ack <= self.floor:
            return
        self.floor = ack
        for rid in [rid for rid in self._replies if rid < ack]:
            del self._replies[rid]
        self._forgotten = {rid for rid in self._forgotten if rid >= ack}

    def lookup(self, rid: int) -> bytes | Status:
        """The stored reply frame for `rid`, or what to do with the request."""
        if rid in self._running:
            return Status.RUNNING
        stored = self._replies.get(rid)
        if stored is not None:
            return stored[1]
        if rid < self.floor or rid < self._horizon or rid in self._forgotten:
            return Status.EXPIRED
        return Status.NEW

    def start(self, rid: int) -> None:
        self._running.add(rid)

    def finish(self, rid: int, frame: bytes, now: float) -> None:
        """Store the reply of a request that completed at `now`."""
        self._running.discard(rid)
        if rid >= self.floor:  # else the client gave up waiting and acknowledged past it
            self._replies[rid] = (now, frame)
        self.trim(now)

    def trim(self, now: float) -> None:
        """Drop replies beyond the bound or older than the TTL."""
        while self._replies:
            rid, (done, _) = next(iter(self._replies.items()))
            if len(self._replies) <= self.max_replies and now - done <= self.ttl:
                break
            del self._replies[rid]
            self._forgotten.add(rid)
        if len(self._forgotten) > self.max_forgotten:
            dropped = sorted(self._forgotten)[: len(self._forgotten) - self.max_forgotten]
            self._horizon = max(self._horizon, dropped[-1] + 1)
            self._forgotten.difference_update(dropped)

    def idle(self) -> bool:
        """Nothing running and nothing stored: the client's state may go."""
        return not self._running and not self._replies
