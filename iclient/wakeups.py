"""Fast wake-ups while the mount is busy: a CPU latency request held through PM QoS.

Every FUSE request is a round trip between two sleeping threads: the caller
waits for the reply, iclient for the next request. Where an idle CPU halts
at once (a VM whose cpuidle haltpoll driver does not poll, as with
guest_halt_poll_ns=0), each wake-up goes through the hypervisor, and a stat
takes twice as long as where it polls. So while the mount serves at least
`rate` operations a second, iclient holds a 0 µs CPU wake-up latency request
on /dev/cpu_dma_latency, the kernel's PM QoS interface for latency-sensitive
programs, and cpuidle polls instead of halting. After a second below that
rate it lets go, so a quiet mount costs no CPU. Only root may ask; elsewhere
the system's idle policy stays and one line says so.
"""

from __future__ import annotations

import logging
import os
import struct

import trio

log = logging.getLogger(__name__)

DEVICE = "/dev/cpu_dma_latency"
WINDOW = 0.1  # seconds over which the rate is counted
QUIET_WINDOWS = 10  # windows below the rate before the request is let go


class Meter:
    """Counts the mount's operations and wakes whoever waits for the next one."""

    __slots__ = ("count", "_active")

    def __init__(self) -> None:
        self.count = 0
        self._active = trio.Event()

    def tick(self) -> None:
        self.count += 1
        self._active.set()

    def rearm(self) -> None:
        """From now on, `wait` returns only after another operation."""
        if self._active.is_set():
            self._active = trio.Event()

    async def wait(self) -> None:
        await self._active.wait()


class BusyPoll:
    """Holds the low-latency request while `meter` counts at least `rate` operations a second."""

    def __init__(self, meter: Meter, rate: int, device: str = DEVICE) -> None:
        self.meter = meter
        self.rate = rate
        self.device = device
        self.holds = 0  # times the request was taken
        self.refused = ""  # why the kernel said no, and busy polling stopped
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    async def run(self) -> None:
        """Until cancelled, or until the kernel refuses the request."""
        try:
            quiet = QUIET_WINDOWS
            while True:
                if quiet >= QUIET_WINDOWS:
                    self._let_go()
                    await self.meter.wait()
                self.meter.rearm()
                before = self.meter.count
                await trio.sleep(WINDOW)
                if self.meter.count - before < self.rate * WINDOW:
                    quiet += 1
                    continue
                quiet = 0
                if not self.held and not self._hold():
                    return
        finally:
            self._let_go()

    def _hold(self) -> bool:
        try:
            fd = os.open(self.device, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, struct.pack("=i", 0))  # a native s32 of microseconds
            except OSError:
                os.close(fd)
                raise
        except OSError as exc:
            self.refused = f"{self.device}: {exc.strerror}"
            log.info("busy polling off, idle CPUs keep the system's policy: %s", self.refused)
            return False
        self._fd = fd
        self.holds += 1
        log.debug("busy: idle CPUs poll")
        return True

    def _let_go(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the device drops the request
            self._fd = None
            log.debug("quiet: idle CPUs back to the system's policy")
