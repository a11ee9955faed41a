#!/usr/bin/env python3
"""Compare-and-swap put rate and latency of the ickpt daemon, per store and client count.

    bench/ickpt.py [--json] [--stores file,etcd] [--runs 3] [--seconds 3]

For each store (an append-only log in a temp dir; etcd started with scripts/services in a
temp dir) an `ickpt` daemon is started on it; then 1 and 16 clients, each with its own
RemoteStore connection, read-modify-CAS their own key in a loop for --seconds. Reported:
successful puts/s and the p50 / p99 latency of one put. Each cell is the median of --runs
runs. The same loop run directly on the store in-process (LogStore / EtcdStore, no daemon,
no RPC; the clients share one store object) is measured in the same run as the baseline,
so the daemon's overhead shows.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack, ExitStack

HERE = os.path.dirname(os.path.abspath(__file__))
# Run as a script, this file would shadow the ickpt package it measures.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.append(os.path.dirname(HERE))  # for bench.processes

import trio  # noqa: E402

from bench import processes  # noqa: E402
from ickpt.etcdstore import EtcdStore  # noqa: E402
from ickpt.logstore import LogStore  # noqa: E402
from ickpt.store import Conflict  # noqa: E402

SERVICES = os.path.join(HERE, "..", "scripts", "services")
ICKPT = os.path.join(os.path.dirname(sys.executable), "ickpt")
CLIENTS = [1, 16]
VALUE_BYTES = 256  # a checkpoint record: a few ids and offsets


def start_etcd(stack: ExitStack) -> str:
    """Start a one-member etcd in a temp dir; return its endpoint (http://host:port)."""
    directory = tempfile.mkdtemp(prefix="bench-etcd-")
    stack.callback(shutil.rmtree, directory, ignore_errors=True)
    out = subprocess.run(
        [sys.executable, SERVICES, "etcd", "start", "--dir", directory],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    stack.callback(
        subprocess.run, [sys.executable, SERVICES, "etcd", "stop", "--dir", directory, "--purge"]
    )
    return json.loads(out)["endpoint"]


def start_daemon(store_url: str, stack: ExitStack) -> int:
    """Start `ickpt` on store_url, wait for its "listening" line and return its port."""
    directory = tempfile.mkdtemp(prefix="bench-ickpt-")
    stack.callback(shutil.rmtree, directory, ignore_errors=True)
    argv = [ICKPT, "--address", "127.0.0.1", "--port", "0", "--store", store_url]
    prefix = "ickpt listening on "
    try:
        _, text = processes.start(stack, "ickpt", argv, prefix, os.path.join(directory, "stderr"))
    except RuntimeError as exc:
        sys.exit(f"bench/ickpt.py: ickpt --store {store_url}: {exc}")
    return int(text[len(prefix) :].rsplit(":", 1)[1])


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def cas_loop(stores: list, seconds: float) -> dict[str, float]:
    """One client per store entry: read-modify-CAS its own key until the deadline."""
    run = uuid.uuid4().hex[:12]
    latencies: list[float] = []
    conflicts = 0
    body = os.urandom(VALUE_BYTES - 8)

    async def client(store, key: str) -> None:
        nonlocal conflicts
        while trio.current_time() < deadline:
            current = await store.get(key)
            version, value = current if current is not None else (0, bytes(8))
            count = int.from_bytes(value[:8], "big") + 1
            started = time.perf_counter()
            try:
                await store.put(key, count.to_bytes(8, "big") + body, version)
            except Conflict:
                conflicts += 1
                continue
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    deadline = trio.current_time() + seconds
    async with trio.open_nursery() as nursery:
        for i, store in enumerate(stores):
            nursery.start_soon(client, store, f"bench/{run}/{i}")
    elapsed = time.perf_counter() - started
    latencies.sort()
    if not latencies:
        sys.exit("bench/ickpt.py: not one put succeeded")
    if conflicts:
        print(f"bench/ickpt.py: {conflicts} conflicts on keys no one else wrote", file=sys.stderr)
    return {
        "puts_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
    }


async def measure_daemon(port: int, clients: int, seconds: float) -> dict[str, float]:
    from ickpt.remote import RemoteStore

    async with AsyncExitStack() as stack:
        stores = [
            await stack.enter_async_context(RemoteStore("127.0.0.1", port)) for _ in range(clients)
        ]
        return await cas_loop(stores, seconds)


async def measure_direct(kind: str, where: str, clients: int, seconds: float) -> dict[str, float]:
    store = await LogStore.open(where) if kind == "file" else EtcdStore([where])
    async with store:
        return await cas_loop([store] * clients, seconds)


def median_of(runs: int, measure, *args) -> dict[str, float]:
    samples = [trio.run(measure, *args) for _ in range(runs)]
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--stores", default="file,etcd")
    parser.add_argument("--via", default="ickpt,direct", help="ickpt (the daemon), direct")
    parser.add_argument("--runs", type=int, default=3, help="runs per cell; the median counts")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one run")
    parser.add_argument("--file-dir", default=None, help="where the file store's logs go")
    args = parser.parse_args()
    vias = args.via.split(",")

    results = []
    if not args.json:
        print(HEADER)
    for kind in args.stores.split(","):
        with ExitStack() as stack:
            if kind == "file":
                directory = tempfile.mkdtemp(prefix="bench-ickpt-log-", dir=args.file_dir)
                stack.callback(shutil.rmtree, directory, ignore_errors=True)
                daemon_url = f"file://{os.path.join(directory, 'ckpt.log')}"
                direct_where = os.path.join(directory, "direct.log")
            elif kind == "etcd":
                direct_where = start_etcd(stack)
                daemon_url = "etcd://" + direct_where.split("://", 1)[1]
            else:
                sys.exit(f"bench/ickpt.py: unknown store {kind!r}")
            for via in vias:
                if via == "ickpt":
                    port = start_daemon(daemon_url, stack)
                    measure, where = measure_daemon, (port,)
                elif via == "direct":
                    measure, where = measure_direct, (kind, direct_where)
                else:
                    sys.exit(f"bench/ickpt.py: unknown --via {via!r}")
                for clients in CLIENTS:
                    cell = median_of(args.runs, measure, *where, clients, args.seconds)
                    results.append({"store": kind, "via": via, "clients": clients, **cell})
                    if not args.json:
                        print_row(results[-1])
    if args.json:
        print(
            json.dumps({"runs": args.runs, "seconds": args.seconds, "results": results}, indent=2)
        )
    else:
        print_overhead(results)


HEADER = f"{'store':<6} {'via':<7} {'clients':>7} {'puts/s':>9} {'p50 ms':>8} {'p99 ms':>8}"


def print_row(row: dict) -> None:
    print(
        f"{row['store']:<6} {row['via']:<7} {row['clients']:>7} {row['puts_s']:>9.1f} "
        f"{row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f}",
        flush=True,
    )


def print_overhead(results: list[dict]) -> None:
    cells = {(r["store"], r["via"], r["clients"]): r for r in results}
    for store, via, clients in cells:
        direct = cells.get((store, "direct", clients))
        if via != "ickpt" or not direct:
            continue
        daemon = cells[store, via, clients]
        print(
            f"{store}, {clients} client(s): the daemon gives "
            f"{daemon['puts_s'] / direct['puts_s']:.2f}x the direct puts/s, "
            f"p50 {daemon['p50_ms'] - direct['p50_ms']:+.2f} ms"
        )


if __name__ == "__main__":
    main()
