"""Exponential back-off with full jitter, shared by every retrying layer of objfs.

Full jitter (a uniform sleep between 0 and the exponential cap) spreads the
retries of many clients that failed together, instead of having them return
in lock step.
"""

from __future__ import annotations

import random
from collections.abc import Iterator


def full_jitter(attempts: int, base_delay: float, max_delay: float) -> Iterator[float]:
    """The sleeps before attempts 2..attempts."""
    for n in range(attempts - 1):
        yield random.uniform(0, min(max_delay, base_delay * 2**n))
