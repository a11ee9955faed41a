"""The kernel's read-ahead window for the mount (its backing device's read_ahead_kb).

The kernel reads ahead of a sequential reader by at most read_ahead_kb, 128
KiB unless set, and asks FUSE for that much per request. At 128 KiB a cold
sequential read is bound by round trips, so the mount asks for the window
its own prefetch covers (`readahead` blocks of `block_kib`): 8 MiB by
default, and the kernel then asks for 1 MiB per request.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

log = logging.getLogger(__name__)

MOUNTINFO = "/proc/self/mountinfo"
BDI = Path("/sys/class/bdi")


def mount_device(mountpoint: str, mountinfo: str = MOUNTINFO) -> str | None:
    """MAJOR:MINOR of the filesystem mounted last at `mountpoint` (a real path), or None.

    Read from mountinfo, not by stat: a stat of a FUSE mount point (or
    resolving a path through it) would ask this very process, which may not
    be serving requests yet.
    """
    found = None
    with open(mountinfo) as f:
        for line in f:
            fields = line.split()
            if len(fields) > 4 and _unescape(fields[4]) == mountpoint:
                found = fields[2]
    return found


def set_kernel_readahead(mountpoint: str, kib: int, bdi: Path = BDI) -> bool:
    """Set the read_ahead_kb of the mount at `mountpoint`, a path resolved before mounting.

    False, with a log line, where that is not allowed.
    """
    device = mount_device(mountpoint)
    if device is None:
        log.warning("kernel read-ahead: %s is not in %s", mountpoint, MOUNTINFO)
        return False
    try:
        (bdi / device / "read_ahead_kb").write_text(f"{kib}\n")
    except OSError as exc:  # not root, or no sysfs: the kernel's 128 KiB stays
        log.info("kernel read-ahead of %s left as it is: %s", mountpoint, exc.strerror)
        return False
    log.info("kernel read-ahead of %s set to %d KiB", mountpoint, kib)
    return True


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)
