"""The lease table of one volume: who may read (SHARED) or write (EXCLUSIVE) each inode.

Pure logic: no RPC and no I/O. The interrupt upcall and the expulsion of a mount
are callables given by the caller; the table only decides when to use them.

Rules
- An inode has many SHARED holders or one EXCLUSIVE holder. Mounts are string
  ids, inodes ints; a mount holding NONE is simply absent.
- A request is granted at once if it is compatible with the other holders and
  nobody is queued on the inode (FIFO per inode, so a stream of SHARED requests
  cannot starve an EXCLUSIVE one). A mount that already holds at least the mode
  it asks is answered at once, queue or not: it waits for nothing.
- Otherwise the request queues, and every holder in its way is interrupted
  (one task per holder, in the table's nursery): to SHARED if the waiter wants
  SHARED and the holder is EXCLUSIVE, else to NONE. At most one interrupt per
  (mount, inode) is outstanding; a waiter needing a stronger one (NONE after
  SHARED) gets it once the first is answered.
- An answered interrupt lowers the lease to its target, unless that lease was
  granted anew since the interrupt was sent: the answer let go of the old lease,
  and the mount has been told it holds the new one. An interrupt unanswered
  within `timeout`, or that raised, expels the holder: `expel(mount, reason)` is
  called and every lease and waiting acquire of the mount is dropped. An
  interrupt whose lease was released, demoted or re-granted meanwhile is harmless.
- Promote is an EXCLUSIVE request by a SHARED holder: it keeps its shared lease
  while it waits and interrupts every other holder, other promoters included,
  so two promoters cannot deadlock. A promoter interrupted to NONE simply waits
  on as a fresh EXCLUSIVE request.
- A waiting acquire of a mount that is released_all (unmount, expulsion) or of a
  table that stops raises LeaseRevoked; a cancelled one leaves the queue as if it
  had never come, and the waiters behind it are re-examined.
- An inode with no holder and no waiter keeps no entry anywhere.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

log = logging.getLogger(__name__)


class Mode(enum.Enum):
    NONE = "none"
    SHARED = "shared"
    EXCLUSIVE = "exclusive"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Mode.NONE: 0, Mode.SHARED: 1, Mode.EXCLUSIVE: 2}


Interrupt = Callable[[str, int, Mode], Awaitable[None]]


class LeaseRevoked(Exception):
    """A waiting acquire was dropped: its mount was released (unmount, expulsion)."""

    def __init__(self, mount: str, inode: int, why: str) -> None:
        super().__init__(f"lease request of mount {mount} for inode {inode} revoked: {why}")
        self.mount = mount
        self.inode = inode


@dataclass(slots=True)
class _Lease:
    mode: Mode
    serial: int  # which grant this is: an interrupt answer only lowers the lease it was sent for


@dataclass(eq=False, slots=True)
class _Waiter:
    mount: str
    mode: Mode
    done: trio.Event = field(default_factory=trio.Event)
    granted: Mode = Mode.NONE
    error: LeaseRevoked | None = None


def _row(inode: int, mount: str, mode: Mode, *, waiting: bool) -> dict:
    return {"inode": inode, "mount": mount, "mode": mode.value, "waiting": waiting}


class LeaseTable:
    """The leases of one volume; `run` must be running for requests that have to wait."""

    def __init__(
        self, interrupt: Interrupt, expel: Callable[[str, str], None], timeout: float
    ) -> None:
        self._interrupt = interrupt
        self._expel = expel
        self._timeout = timeout
        self._nursery: trio.Nursery | None = None
        self._holders: dict[int, dict[str, _Lease]] = {}
        self._by_mount: dict[str, set[int]] = {}
        self._waiters: dict[int, list[_Waiter]] = {}
        self._interrupting: set[tuple[str, int]] = set()
        self._serial = 0
        self.interrupts_sent = 0
        self.interrupts_answered = 0
        self.expulsions = 0
        self.grants = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the interrupt tasks until cancelled; then fail whoever still waits."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            # Nobody would ever interrupt the holders for them: let them fail, not hang.
            for inode, queue in list(self._waiters.items()):
                for waiter in queue:
                    self._fail(inode, waiter, "the lease table stopped")
            self._waiters.clear()

    # -- queries ---------------------------------------------------------------

    def mode(self, mount: str, inode: int) -> Mode:
        lease = self._holders.get(inode, {}).get(mount)
        return lease.mode if lease else Mode.NONE

    def holds_exclusive(self, mount: str, inode: int) -> bool:
        return self.mode(mount, inode) is Mode.EXCLUSIVE

    def holders(self, inode: int) -> dict[str, Mode]:
        return {mount: lease.mode for mount, lease in self._holders.get(inode, {}).items()}

    def snapshot(self) -> list[dict]:
        """Every lease and waiting request, by inode, in JSON-able form for the status page."""
        rows = []
        for inode in sorted(self._holders.keys() | self._waiters.keys()):
            for mount, lease in self._holders.get(inode, {}).items():
                rows.append(_row(inode, mount, lease.mode, waiting=False))
            for waiter in self._waiters.get(inode, ()):
                rows.append(_row(inode, waiter.mount, waiter.mode, waiting=True))
        return rows

    # -- requests --------------------------------------------------------------

    async def acquire(self, mount: str, inode: int, mode: Mode) -> Mode:
        """Wait until `mount` holds at least `mode` (SHARED or EXCLUSIVE); return the mode held."""
        if mode is Mode.NONE:
            raise ValueError("acquire asks for SHARED or EXCLUSIVE, not NONE")
        if self._nursery is None:
            raise RuntimeError("the lease table is not running")
        held = self.mode(mount, inode)
        # A lease under interrupt is going down once the answer is in: the holder has let go
        # already, so its new request must not be met by the lease it gave up.
        if held.rank >= mode.rank and (mount, inode) not in self._interrupting:
            return held
        if inode not in self._waiters and self._compatible(inode, mount, mode):
            return self._grant(inode, mount, mode)
        waiter = _Waiter(mount, mode)
        self._waiters.setdefault(inode, []).append(waiter)
        self._examine(inode)
        try:
            await waiter.done.wait()
        except BaseException:
            self._withdraw(inode, waiter)
            raise
        if waiter.error:
            raise waiter.error
        return waiter.granted

    def demote(self, mount: str, inode: int) -> Mode:
        """EXCLUSIVE -> SHARED; any other lease is left as it is. Returns the mode held."""
        if self.mode(mount, inode) is Mode.EXCLUSIVE:
            self._lower(inode, mount, Mode.SHARED)
            self._examine(inode)
        return self.mode(mount, inode)

    def release(self, mount: str, inode: int) -> None:
        """Let go of the lease, if any; the waiters it held up are re-examined."""
        self._lower(inode, mount, Mode.NONE)
        self._examine(inode)

    def release_all(self, mount: str) -> None:
        """Drop every lease of `mount` and fail its waiting acquires (unmount, expulsion)."""
        touched = self._by_mount.get(mount, set()).copy()
        for inode in touched:
            self._lower(inode, mount, Mode.NONE)
        for inode, queue in list(self._waiters.items()):
            for waiter in [w for w in queue if w.mount == mount]:
                queue.remove(waiter)
                self._fail(inode, waiter, "the mount's leases were released")
                touched.add(inode)
            if not queue:
                del self._waiters[inode]
        for inode in touched:
            self._examine(inode)

    # -- the table itself ------------------------------------------------------

    def _conflicts(self, inode: int, mount: str, mode: Mode) -> dict[str, Mode]:
        """The other holders in the way of `mode`, each with the mode it must come down to."""
        if mode is Mode.EXCLUSIVE:
            # Other promoters included: each must let go, or two promoters wait on each other.
            return {m: Mode.NONE for m in self._holders.get(inode, {}) if m != mount}
        return {
            m: Mode.SHARED
            for m, lease in self._holders.get(inode, {}).items()
            if m != mount and lease.mode is Mode.EXCLUSIVE
        }

    def _compatible(self, inode: int, mount: str, mode: Mode) -> bool:
        return not self._conflicts(inode, mount, mode)

    def _grant(self, inode: int, mount: str, mode: Mode) -> Mode:
        held = self.mode(mount, inode)
        if held.rank > mode.rank:
            # A mount's second, weaker request granted late must not lower its stronger lease.
            mode = held
        self._serial += 1
        self._holders.setdefault(inode, {})[mount] = _Lease(mode, self._serial)
        self._by_mount.setdefault(mount, set()).add(inode)
        self.grants += 1
        return mode

    def _lower(self, inode: int, mount: str, target: Mode) -> None:
        leases = self._holders.get(inode, {})
        lease = leases.get(mount)
        if lease is None or lease.mode.rank <= target.rank:
            return
        if target is not Mode.NONE:
            lease.mode = target
            return
        del leases[mount]
        if not leases:
            del self._holders[inode]
        inodes = self._by_mount[mount]
        inodes.discard(inode)
        if not inodes:
            del self._by_mount[mount]

    def _examine(self, inode: int) -> None:
        """Grant the queue's head while it fits; interrupt the holders in the way of the rest."""
        queue = self._waiters.get(inode)
        if not queue:
            return
        wanted: dict[str, Mode] = {}
        while queue and self._compatible(inode, queue[0].mount, queue[0].mode):
            waiter = queue.pop(0)
            waiter.granted = self._grant(inode, waiter.mount, waiter.mode)
            waiter.done.set()
        for waiter in queue:
            for holder, target in self._conflicts(inode, waiter.mount, waiter.mode).items():
                # The earliest waiter sets the target; a stronger one follows its answer.
                wanted.setdefault(holder, target)
        if not queue:
            del self._waiters[inode]
        for holder, target in wanted.items():
            # One interrupt at a time per lease: once it is answered, we come back here.
            if (holder, inode) not in self._interrupting:
                self._interrupting.add((holder, inode))
                serial = self._holders[inode][holder].serial
                self._running().start_soon(self._send_interrupt, holder, inode, target, serial)

    def _running(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError("the lease table is not running")
        return self._nursery

    def _withdraw(self, inode: int, waiter: _Waiter) -> None:
        """A cancelled acquire: leave no trace, and let those queued behind it move up."""
        queue = self._waiters.get(inode, [])
        if waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._waiters[inode]
            self._examine(inode)

    def _fail(self, inode: int, waiter: _Waiter, why: str) -> None:
        waiter.error = LeaseRevoked(waiter.mount, inode, why)
        waiter.done.set()

    async def _send_interrupt(self, holder: str, inode: int, target: Mode, serial: int) -> None:
        self.interrupts_sent += 1
        log.debug("interrupting mount %s for inode %d to %s", holder, inode, target.value)
        try:
            with trio.fail_after(self._timeout):
                await self._interrupt(holder, inode, target)
        except trio.TooSlowError:
            failure = f"did not answer the interrupt for inode {inode} within {self._timeout}s"
        except Exception as exc:
            failure = f"the interrupt for inode {inode} failed: {exc!r}"
        else:
            failure = None
            self.interrupts_answered += 1
        finally:
            self._interrupting.discard((holder, inode))
        # Only the lease the interrupt was sent for is concerned; a newer grant stands.
        lease = self._holders.get(inode, {}).get(holder)
        if lease is not None and lease.serial == serial and lease.mode.rank > target.rank:
            if failure is None:
                self._lower(inode, holder, target)
            else:
                self._expel_mount(holder, failure)
        self._examine(inode)

    def _expel_mount(self, mount: str, reason: str) -> None:
        log.warning("expelling mount %s: %s", mount, reason)
        self.expulsions += 1
        self._expel(mount, reason)
        self.release_all(mount)
