#!/usr/bin/env python3
"""PUT and GET throughput of objfs.storage, per backend, object size and concurrency.

    bench/storage.py [--json] [--backends file,mem,swift,azure] [--runs 3]

Starts its own Swift all-in-one and Azurite (scripts/services) in temp dirs
unless --swift-url / --azure-url are given. Each cell is the median of --runs
runs; local disk (file://) and the raw SDK with the same concurrency
(swift-raw, azure-raw) are measured in the same run as baselines.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from urllib.parse import quote

import trio

from objfs.storage import RetryPolicy, open_store

HERE = os.path.dirname(os.path.abspath(__file__))
SERVICES = os.path.join(HERE, "..", "scripts", "services")
KiB, MiB = 1 << 10, 1 << 20
SIZES = [64 * KiB, MiB, 16 * MiB]
INFLIGHT = [1, 8]
# Bytes moved per cell and direction: enough objects to average, small enough to be quick.
CELL_BYTES = {64 * KiB: 24 * MiB, MiB: 96 * MiB, 16 * MiB: 256 * MiB}


def start_service(kind: str, stack: ExitStack) -> dict:
    directory = tempfile.mkdtemp(prefix=f"bench-{kind}-")
    stack.callback(shutil.rmtree, directory, ignore_errors=True)
    out = subprocess.run(
        [sys.executable, SERVICES, kind, "start", "--dir", directory],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    stack.callback(
        subprocess.run, [sys.executable, SERVICES, kind, "stop", "--dir", directory, "--purge"]
    )
    return json.loads(out)


def query(**params: str) -> str:
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())


async def measure_store(url: str, size: int, inflight: int) -> dict[str, float]:
    """Objects/s and MB/s of PUT then GET of `count` objects of `size` bytes."""
    count = max(inflight * 2, CELL_BYTES[size] // size)
    names = [f"bench/{size}/{i}" for i in range(count)]
    body = os.urandom(size)
    async with open_store(url, RetryPolicy(attempts=3)) as store:
        await store.ensure_container()

        async def run(op) -> float:
            pending = iter(names)

            async def worker():
                for name in pending:
                    await op(store, name)

            start = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(inflight):
                    nursery.start_soon(worker)
            return time.perf_counter() - start

        put_seconds = await run(lambda s, n: s.put(n, body))
        get_seconds = await run(lambda s, n: s.get(n))
        for name in names:
            await store.delete(name)
    return figures(count, size, put_seconds, get_seconds)


def figures(count: int, size: int, put_seconds: float, get_seconds: float) -> dict[str, float]:
    return {
        "put_ops": count / put_seconds,
        "put_mbs": count * size / put_seconds / 1e6,
        "get_ops": count / get_seconds,
        "get_mbs": count * size / get_seconds / 1e6,
    }


def raw_swift(info: dict, container: str):
    from swiftclient.client import Connection

    def connect() -> Connection:
        return Connection(authurl=info["auth_url"], user=info["user"], key=info["key"])

    connect().put_container(container)
    return (
        connect,
        lambda c, n, b: c.put_object(container, n, b),
        lambda c, n: c.get_object(container, n),
    )


def raw_azure(info: dict, container: str):
    from azure.storage.blob import ContainerClient

    def connect() -> ContainerClient:
        return ContainerClient.from_connection_string(info["connection_string"], container)

    connect().create_container()
    return (
        connect,
        lambda c, n, b: c.upload_blob(n, b, overwrite=True),
        lambda c, n: c.download_blob(n).readall(),
    )


def measure_raw(sdk, size: int, inflight: int) -> dict[str, float]:
    """The SDK alone in `inflight` threads, one client each: what the layer could reach."""
    connect, put, get = sdk
    count = max(inflight * 2, CELL_BYTES[size] // size)
    body = os.urandom(size)
    clients = [connect() for _ in range(inflight)]

    def run(op) -> float:
        def worker(k: int):
            for i in range(k, count, inflight):
                op(clients[k], f"raw/{size}/{i}")

        start = time.perf_counter()
        with ThreadPoolExecutor(inflight) as pool:
            list(pool.map(worker, range(inflight)))
        return time.perf_counter() - start

    put_seconds = run(lambda c, n: put(c, n, body))
    get_seconds = run(get)
    return figures(count, size, put_seconds, get_seconds)


def measure_cell(target, size: int, inflight: int) -> dict[str, float]:
    if isinstance(target, str):
        return trio.run(measure_store, target, size, inflight)
    return measure_raw(target, size, inflight)


def median_of(runs: int, measure, *args) -> dict[str, float]:
    samples = [measure(*args) for _ in range(runs)]
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def targets(args: argparse.Namespace, stack: ExitStack) -> dict[str, object]:
    """Backend label -> a store URL (measured through objfs) or a raw SDK triple."""
    chosen: dict[str, object] = {}
    container = f"bench-{uuid.uuid4().hex[:12]}"
    for backend in args.backends.split(","):
        if backend == "file":
            directory = tempfile.mkdtemp(prefix="bench-file-", dir=args.file_dir)
            stack.callback(shutil.rmtree, directory, ignore_errors=True)
            chosen["file"] = f"file://{directory}"
        elif backend == "mem":
            chosen["mem"] = f"mem://{container}"
        elif backend == "swift":
            info = start_service("swift", stack)
            auth = query(auth_url=info["auth_url"], user=info["user"], key=info["key"])
            chosen["swift"] = f"swift://{container}?{auth}"
            chosen["swift-raw"] = raw_swift(info, container + "-raw")
        elif backend == "azure":
            info = start_service("azurite", stack)
            chosen["azure"] = (
                f"azure://{container}?{query(connection_string=info['connection_string'])}"
            )
            chosen["azure-raw"] = raw_azure(info, container + "-raw")
        else:
            sys.exit(f"bench/storage.py: unknown backend {backend!r}")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--backends", default="file,mem,swift,azure")
    parser.add_argument("--runs", type=int, default=3, help="runs per cell; the median counts")
    parser.add_argument("--file-dir", default=None, help="where file:// puts its container")
    args = parser.parse_args()

    results = []
    if not args.json:
        print(HEADER)
    with ExitStack() as stack:
        for label, target in targets(args, stack).items():
            for size in SIZES:
                for inflight in INFLIGHT:
                    cell = median_of(args.runs, measure_cell, target, size, inflight)
                    results.append({"backend": label, "size": size, "inflight": inflight, **cell})
                    if not args.json:
                        print_row(results[-1])
    if args.json:
        print(json.dumps({"runs": args.runs, "results": results}, indent=2))
    else:
        print_speedups(results)


HEADER = (
    f"{'backend':<10} {'size':>7} {'inflight':>8} {'PUT/s':>9} {'PUT MB/s':>9} "
    f"{'GET/s':>9} {'GET MB/s':>9}"
)


def print_row(row: dict) -> None:
    size = f"{row['size'] // KiB}KiB" if row["size"] < MiB else f"{row['size'] // MiB}MiB"
    print(
        f"{row['backend']:<10} {size:>7} {row['inflight']:>8} {row['put_ops']:>9.1f} "
        f"{row['put_mbs']:>9.1f} {row['get_ops']:>9.1f} {row['get_mbs']:>9.1f}",
        flush=True,
    )


def print_speedups(results: list[dict]) -> None:
    cells = {(r["backend"], r["size"], r["inflight"]): r for r in results}
    for backend in sorted({r["backend"] for r in results}):
        one, eight = cells.get((backend, 64 * KiB, 1)), cells.get((backend, 64 * KiB, 8))
        if one and eight:
            print(
                f"{backend}: 64KiB PUT objects/s with 8 in flight = "
                f"{eight['put_ops'] / one['put_ops']:.2f}x one in flight"
            )


if __name__ == "__main__":
    main()
