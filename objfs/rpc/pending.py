"""A reply that some task is waiting for: a call's on the client, an upcall's on the server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import trio

from objfs.rpc import wire
from objfs.rpc.errors import error_for


@dataclass
class PendingReply:
    done: trio.Event = field(default_factory=trio.Event)
    reply: wire.Reply | None = None
    error: Exception | None = None

    def finish(self, reply: wire.Reply | None = None, error: Exception | None = None) -> None:
        """Settle with the peer's reply or a local failure; the first outcome wins."""
        if not self.done.is_set():
            self.reply, self.error = reply, error
            self.done.set()

    def outcome(self) -> Any:
        """The result, or raise the error it settled with (the peer's mapped by code)."""
        if self.error is not None:
            raise self.error
        assert self.reply is not None
        if self.reply.error is not None:
            raise error_for(*self.reply.error)
        return self.reply.result
