"""An fsx-style check: random writes, reads, truncates and mmap I/O against an in-memory model.

Every read through read(2) or a mapping is compared with the model, and the size
after every change with fstat; the first disagreement fails with the op number,
the op, the first differing offset and the ops that led there.
"""

from __future__ import annotations

import collections
import itertools
import mmap
import os
import random
from pathlib import Path

import pytest

SEED = 0x0F5C
NUM_OPS = 100_000
MAX_FILE = 4 * 1024 * 1024
MAX_IO = 64 * 1024
HISTORY = 20

# Relative frequencies. Reads dominate so that a bad write is caught soon after it
# happens; close/reopen re-reads the whole file, so it is kept rare.
WEIGHTS = {
    "read": 30,
    "write": 25,
    "mapread": 12,
    "mapwrite": 12,
    "truncate": 8,
    "fsync": 2,
    "reopen": 0.3,
}


def first_difference(expected: bytes | bytearray, actual: bytes) -> int:
    """The first offset where the two differ, or where the shorter one ends."""
    step = 4096
    for start in range(0, min(len(expected), len(actual)), step):
        if expected[start : start + step] != actual[start : start + step]:
            return next(
                start + i
                for i, (a, b) in enumerate(
                    zip(expected[start : start + step], actual[start : start + step], strict=False)
                )
                if a != b
            )
    return min(len(expected), len(actual))


class Fsx:
    def __init__(self, path: Path, seed: int):
        self.path = path
        self.rng = random.Random(seed)
        self.model = bytearray()
        self.history: collections.deque[str] = collections.deque(maxlen=HISTORY)
        self.opno = 0
        self.seen: collections.Counter[str] = collections.Counter()
        self.op = ""
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)

    def fail(self, what: str) -> None:
        ops = "\n".join(self.history)
        pytest.fail(
            f"op {self.opno} ({self.op}): {what}\nseed {SEED:#x}; last {len(self.history)} ops:\n"
            f"{ops}",
            pytrace=False,
        )

    def check(self, offset: int, expected: bytes | bytearray, actual: bytes) -> None:
        if expected != actual:
            at = first_difference(expected, actual)
            want, got = bytes(expected[at : at + 16]).hex(), actual[at : at + 16].hex()
            self.fail(
                f"first difference at file offset {offset + at:#x} (expected {want}, got {got};"
                f" expected {len(expected)} bytes, got {len(actual)})"
            )

    def check_size(self) -> None:
        size = os.fstat(self.fd).st_size
        if size != len(self.model):
            self.fail(f"fstat size {size:#x}, model size {len(self.model):#x}")

    def io_length(self) -> int:
        # Small I/O mostly keeps 100,000 ops quick; large I/O still crosses pages and blocks.
        return self.rng.randint(1, 4096) if self.rng.random() < 0.9 else self.rng.randint(1, MAX_IO)

    def write_offset(self, length: int) -> int:
        size = len(self.model)
        if self.rng.random() < 0.8 and size:
            return min(self.rng.randint(0, size), MAX_FILE - length)
        # Anywhere up to the limit, often far past EOF: the gap must read as zeros.
        return self.rng.randint(0, MAX_FILE - length)

    def read_range(self) -> tuple[int, int]:
        size = len(self.model)
        length = self.io_length()
        if not size or self.rng.random() < 0.1:
            return self.rng.randint(0, size + MAX_IO), length  # at or past EOF: short reads
        return self.rng.randint(0, size - 1), length

    def set_model_size(self, size: int) -> None:
        if size < len(self.model):
            del self.model[size:]
        else:
            self.model.extend(bytes(size - len(self.model)))

    def model_write(self, offset: int, data: bytes) -> None:
        if offset > len(self.model):
            self.seen["hole"] += 1
            self.set_model_size(offset)
        self.model[offset : offset + len(data)] = data

    def do_read(self) -> None:
        offset, length = self.read_range()
        self.op = f"read {offset:#x} +{length:#x}"
        self.history.append(f"{self.opno}: {self.op}")
        self.check(offset, self.model[offset : offset + length], os.pread(self.fd, length, offset))

    def do_write(self) -> None:
        length = self.io_length()
        offset = self.write_offset(length)
        self.op = f"write {offset:#x} +{length:#x} (size {len(self.model):#x})"
        self.history.append(f"{self.opno}: {self.op}")
        data = self.rng.randbytes(length)
        written = os.pwrite(self.fd, data, offset)
        if written != length:
            self.fail(f"short write: {written} of {length}")
        self.model_write(offset, data)
        self.check_size()

    def do_mapread(self) -> None:
        size = len(self.model)
        if not size:
            return self.do_read()  # an empty file cannot be mapped
        offset = self.rng.randint(0, size - 1)
        length = min(self.io_length(), size - offset)
        self.op = f"mapread {offset:#x} +{length:#x}"
        self.history.append(f"{self.opno}: {self.op}")
        with mmap.mmap(self.fd, size, access=mmap.ACCESS_READ) as m:
            actual = m[offset : offset + length]
        self.check(offset, self.model[offset : offset + length], actual)

    def do_mapwrite(self) -> None:
        length = self.io_length()
        offset = self.write_offset(length)
        self.op = f"mapwrite {offset:#x} +{length:#x} (size {len(self.model):#x})"
        self.history.append(f"{self.opno}: {self.op}")
        data = self.rng.randbytes(length)
        # A mapping cannot grow the file, so extend it first, as fsx does.
        if offset + length > len(self.model):
            self.seen["mapwrite extends"] += 1
            os.ftruncate(self.fd, offset + length)
            self.set_model_size(offset + length)
        # No msync(MS_SYNC), which is an fsync at the mount: fsx's own msync is asynchronous.
        # The kernel writes the pages back on its own, on the fsync ops and at close.
        with mmap.mmap(self.fd, len(self.model)) as m:
            m[offset : offset + length] = data
        self.model_write(offset, data)
        self.check_size()

    def do_truncate(self) -> None:
        size = len(self.model)
        roll = self.rng.random()
        if roll < 0.45:
            new = self.rng.randint(0, size)
        elif roll < 0.9:
            new = self.rng.randint(size, min(MAX_FILE, size + 4 * MAX_IO))
        else:
            new = self.rng.randint(0, MAX_FILE)
        self.op = f"truncate {size:#x} -> {new:#x}"
        self.history.append(f"{self.opno}: {self.op}")
        os.ftruncate(self.fd, new)
        self.seen["truncate down" if new < size else "truncate up"] += 1
        self.set_model_size(new)
        self.check_size()

    def do_fsync(self) -> None:
        self.op = "fsync"
        self.history.append(f"{self.opno}: {self.op}")
        os.fsync(self.fd)

    def do_reopen(self) -> None:
        self.op = f"close/reopen (size {len(self.model):#x})"
        self.history.append(f"{self.opno}: {self.op}")
        os.close(self.fd)
        self.fd = os.open(self.path, os.O_RDWR)
        self.check_size()
        self.check(0, self.model, os.pread(self.fd, MAX_FILE + 1, 0))

    def run(self, count: int) -> None:
        names = list(WEIGHTS)
        actions = [getattr(self, f"do_{name}") for name in names]
        cum_weights = list(itertools.accumulate(WEIGHTS.values()))
        try:
            for self.opno in range(count):
                action = self.rng.choices(actions, cum_weights=cum_weights)[0]
                self.seen[action.__name__] += 1
                action()
            self.opno = count
            self.op = "final close and read"
            self.history.append(f"{self.opno}: {self.op}")
            os.close(self.fd)
            self.fd = -1
            self.check(0, self.model, self.path.read_bytes())
        finally:
            if self.fd >= 0:
                os.close(self.fd)


@pytest.mark.slow
def test_fsx(fsroot: Path):
    fsx = Fsx(fsroot / "fsx.data", SEED)
    fsx.run(NUM_OPS)
    # Guard against a generator that stopped exercising the interesting cases.
    cases = ["hole", "mapwrite extends", "truncate down", "truncate up"]
    cases += [f"do_{name}" for name in WEIGHTS]
    assert all(fsx.seen[case] >= 10 for case in cases), fsx.seen
