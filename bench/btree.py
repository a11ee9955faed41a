#!/usr/bin/env python3
"""Speed and memory of layout.btree, next to the Python ceiling (dict, SortedDict).

    bench/btree.py [--json] [--keys 1000000] [--runs 3] [--lookups 200000]

Each run is a fresh process (so its peak RSS is its own); figures are the
median over --runs. One run:

1. inserts --keys integer keys 0..N-1 in random order into an empty tree
   (page_bytes 8192); each value is an int (2 * key + 1, 1 to 5 bytes of
   msgpack), about the size of a packed location;
2. flushes it through a writer that packs pages into in-memory segments of
   up to 8 MiB (dict of object number -> bytes), as the mount packs log
   segments;
3. reopens the tree at the flushed root with a 64 MiB PageCache, looks up
   --lookups random keys cold (pages read and decoded) and again warm;
4. scans all keys in order;
5. does the same inserts, lookups and scan on a plain dict (scan: sorted())
   and a sortedcontainers.SortedDict, as the Python ceiling.

RSS growth is the peak resident size (ru_maxrss) over the resident size
after the key list was built, taken before the baselines run.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import time

import trio
from sortedcontainers import SortedDict

from layout.btree import BTree
from layout.codec import IntCodec, Location
from layout.pagecache import PageCache

MiB = 1 << 20
SEGMENT_BYTES = 8 * MiB


class Segments:
    """Reader and writer over segments held in memory."""

    def __init__(self) -> None:
        self.objects: dict[int, bytes] = {}
        self.number = 0
        self.buffer = bytearray()

    def append(self, data: bytes) -> Location:
        if len(self.buffer) + len(data) > SEGMENT_BYTES:
            self.seal()
        location = Location(self.number + 1, len(self.buffer), len(data))
        self.buffer += data
        return location

    def seal(self) -> None:
        if self.buffer:
            self.number += 1
            self.objects[self.number] = bytes(self.buffer)
            self.buffer = bytearray()

    async def read(self, location: Location) -> bytes:
        start = location.offset
        return self.objects[location.object][start : start + location.length]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / MiB


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


async def btree_run(keys: list[int], probes: list[int]) -> dict[str, float]:
    out: dict[str, float] = {}
    segments = Segments()
    tree = BTree(None, segments, IntCodec(), IntCodec(), cache=PageCache(64 * MiB))
    start = time.perf_counter()
    for key in keys:
        await tree.put(key, 2 * key + 1)
    out["insert_per_s"] = len(keys) / (time.perf_counter() - start)

    result, seconds = timed(tree.flush, segments)
    segments.seal()
    out["flush_s"] = seconds
    out["stored_mb"] = sum(map(len, segments.objects.values())) / MiB
    del tree

    cache = PageCache(64 * MiB)
    tree = BTree(result.root, segments, IntCodec(), IntCodec(), cache=cache)
    for label in ("cold", "warm"):
        start = time.perf_counter()
        for key in probes:
            if await tree.get(key) != 2 * key + 1:
                raise AssertionError(f"lost key {key}")
        out[f"lookup_{label}_per_s"] = len(probes) / (time.perf_counter() - start)

    start = time.perf_counter()
    n = 0
    async for _ in tree.items():
        n += 1
    out["scan_per_s"] = n / (time.perf_counter() - start)
    if n != len(keys):
        raise AssertionError(f"scan saw {n} keys of {len(keys)}")
    out["cache_mb"] = cache.nbytes / MiB
    return out


def baseline_run(keys: list[int], probes: list[int]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, make in (("dict", dict), ("sorteddict", SortedDict)):
        table = make()
        start = time.perf_counter()
        for key in keys:
            table[key] = 2 * key + 1
        out[f"{name}_insert_per_s"] = len(keys) / (time.perf_counter() - start)
        start = time.perf_counter()
        for key in probes:
            if table.get(key) != 2 * key + 1:
                raise AssertionError(f"lost key {key}")
        out[f"{name}_lookup_per_s"] = len(probes) / (time.perf_counter() - start)
        start = time.perf_counter()
        entries = sorted(table.items()) if name == "dict" else table.items()
        n = sum(1 for _ in entries)
        out[f"{name}_scan_per_s"] = n / (time.perf_counter() - start)
        del table
    return out


def one_run(n_keys: int, n_lookups: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    keys = list(range(n_keys))
    rng.shuffle(keys)
    probes = [rng.randrange(n_keys) for _ in range(n_lookups)]
    rss_start = rss_mb()
    out = trio.run(btree_run, keys, probes)
    out["rss_growth_mb"] = peak_rss_mb() - rss_start
    out.update(baseline_run(keys, probes))
    return out


ROWS = [
    ("inserts/s (random order)", "insert_per_s", "sorteddict_insert_per_s", "dict_insert_per_s"),
    ("lookups/s cold", "lookup_cold_per_s", None, None),
    ("lookups/s warm", "lookup_warm_per_s", "sorteddict_lookup_per_s", "dict_lookup_per_s"),
    ("ordered scan keys/s", "scan_per_s", "sorteddict_scan_per_s", "dict_scan_per_s"),
    ("flush s", "flush_s", None, None),
    ("stored MiB", "stored_mb", None, None),
    ("cache MiB after scan", "cache_mb", None, None),
    ("peak RSS growth MiB", "rss_growth_mb", None, None),
]


def print_table(result: dict[str, float], args: argparse.Namespace) -> None:
    print(f"{args.keys} keys, {args.lookups} lookups, median of {args.runs} runs")
    print(f"{'':28} {'btree':>12} {'SortedDict':>12} {'dict':>12}")
    for label, *columns in ROWS:
        cells = [f"{result[c]:12,.2f}" if c else f"{'':>12}" for c in columns]
        print(f"{label:28} {' '.join(cells)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--one-run", type=int, metavar="SEED", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_run is not None:
        print(json.dumps(one_run(args.keys, args.lookups, args.one_run)))
        return
    runs = []
    for seed in range(args.runs):
        command = [sys.executable, __file__, "--keys", str(args.keys)]
        command += ["--lookups", str(args.lookups), "--one-run", str(seed)]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        runs.append(json.loads(out))
    result = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    if args.json:
        print(json.dumps({"keys": args.keys, "lookups": args.lookups, "runs": args.runs, **result}))
    else:
        print_table(result, args)


if __name__ == "__main__":
    main()
