"""A TCP proxy that cuts its connections after random byte counts, seeded.

Each accepted connection gets a byte budget per direction; the connection
(both sides) is closed when either direction has forwarded its budget: mid
frame, or - for a share of connections - exactly at the first frame boundary
after the budget.
"""

from __future__ import annotations

import random

import trio


class FrameBoundaries:
    """Follows the 4-byte length prefixes of a byte stream to know where frames end."""

    def __init__(self) -> None:
        self.pos = 0
        self._header = b""
        self._remaining: int | None = None  # body bytes left; None while reading a header

    def feed(self, data: bytes) -> list[int]:
        """Stream offsets (just past the frame) of the frames that end in `data`."""
        ends, i = [], 0
        while i < len(data):
            if self._remaining is None:
                take = data[i : i + 4 - len(self._header)]
                self._header += take
                i += len(take)
                if len(self._header) == 4:
                    self._remaining = int.from_bytes(self._header, "big")
                    self._header = b""
            else:
                take = min(self._remaining, len(data) - i)
                i += take
                self._remaining -= take
            if self._remaining == 0:
                ends.append(self.pos + i)
                self._remaining = None
        self.pos += len(data)
        return ends


class CuttingProxy:
    def __init__(self, target_port: int, seed: int, max_budget: int = 1500) -> None:
        self.target_port = target_port
        self.rng = random.Random(seed)
        self.max_budget = max_budget
        self.connections = 0
        self.cuts = 0
        self.boundary_cuts = 0

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, downstream: trio.SocketStream) -> None:
        self.connections += 1
        at_boundary = self.rng.random() < 0.3
        budgets = self.rng.randint(1, self.max_budget), self.rng.randint(1, self.max_budget)
        try:
            upstream = await trio.open_tcp_stream("127.0.0.1", self.target_port)
        except OSError:
            await downstream.aclose()
            return
        try:
            async with trio.open_nursery() as nursery:
                scope = nursery.cancel_scope
                nursery.start_soon(self._pump, downstream, upstream, budgets[0], at_boundary, scope)
                nursery.start_soon(self._pump, upstream, downstream, budgets[1], at_boundary, scope)
        finally:
            await trio.aclose_forcefully(downstream)
            await trio.aclose_forcefully(upstream)

    async def _pump(self, src, dst, budget: int, at_boundary: bool, scope: trio.CancelScope):
        frames = FrameBoundaries()
        try:
            while data := await src.receive_some(65536):
                start = frames.pos
                ends = frames.feed(data)
                cut = self._cut_at(start, len(data), ends, budget, at_boundary)
                if cut is not None:
                    await dst.send_all(data[: cut - start])
                    self.cuts += 1
                    self.boundary_cuts += at_boundary
                    break
                await dst.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        scope.cancel()

    @staticmethod
    def _cut_at(start: int, size: int, ends: list[int], budget: int, at_boundary: bool):
        """Where in the stream to cut within this chunk, if anywhere."""
        if at_boundary:
            return next((end for end in ends if end >= budget), None)
        return budget if start + size >= budget else None
