#!/usr/bin/env python3
"""Inode-table put rate, Flush latency and memory of a real imgr daemon over real RPC.

    bench/imgr.py [--json] [--runs 3] [--seconds 3] [--inodes 1000000] [--file-dir DIR]

Starts its own `ickpt` (a file log) and `imgr run` processes on a file:// volume in a
temp dir, and stops every one of them by PID (and removes the temp dir) at the end,
on error or ^C too. Each client is its own ImgrClient mount (its own connection).

- put: 1 and 8 clients each fetch inode and object numbers (fresh inode numbers
  are exclusively leased to the mount that fetched them: no Lease call), then
  PutInodeTableEntries in a loop for --seconds, with
  1 entry per call (calls/s) and 100 entries per call (entries/s).
- flush: 1 and 8 clients each loop one 1-entry Put then Flush; p50 / p99 of the
  Flush, and how many checkpoints (the status page's checkpoint.count) they took.
- 1M inodes: a fresh volume and imgr; 8 clients fetch inode numbers and put
  --inodes entries in batches of 1,000, then Flush; imgr's VmRSS /
  VmHWM from /proc. Then imgr is restarted on that volume and serves Gets of
  10,000 random inodes; its RSS again.

Baselines, measured in the same run: the compare-and-swap put rate of the same
ickpt daemon through RemoteStore, and the latency of a small object put on a
file:// store in the same temp dir: together the floor of one checkpoint (a
segment put, a CAS, the backup put of object 0). Each figure is the median of
--runs runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import AsyncExitStack, ExitStack

HERE = os.path.dirname(os.path.abspath(__file__))
# Run as a script, this file would shadow the imgr package it measures.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.append(os.path.dirname(HERE))  # for bench.processes

import trio  # noqa: E402

from bench import processes  # noqa: E402
from ickpt.remote import RemoteStore  # noqa: E402
from imgr.client import ImgrClient  # noqa: E402
from layout.codec import Location  # noqa: E402
from objfs.storage import open_store  # noqa: E402

BIN = os.path.dirname(sys.executable)
SECRET = "bench-mount-secret"
CLIENTS = [1, 8]
BATCHES = [1, 100]  # entries per PutInodeTableEntries
INODES_PER_CLIENT = 1000  # fresh inodes of each client of the put and flush loops
HEAD_BYTES = 200  # the Location length of one inode head
BIG_CLIENTS = 8  # clients putting the --inodes entries
BIG_BATCH = 1000  # entries per Put of the --inodes fill
GETS = 10_000  # random Gets after the restart
GETS_IN_FLIGHT = 16
SMALL_OBJECT = 4096  # about a checkpoint segment of a few dirty pages
MAX_NONCES = 1 << 16  # FetchNonceRange's largest count


# ------------------------------------------------------------------ processes


class Deployment:
    """A temp dir with an ickpt daemon in it; formats volumes and starts imgr processes."""

    def __init__(self, stack: ExitStack, file_dir: str | None) -> None:
        self.stack = stack
        self.tmp = tempfile.mkdtemp(prefix="bench-imgr-", dir=file_dir)
        stack.callback(shutil.rmtree, self.tmp, ignore_errors=True)
        self.serial = 0
        proc, line = self.start(
            "ickpt",
            [os.path.join(BIN, "ickpt"), "--address", "127.0.0.1", "--port", "0",
             "--store", f"file://{os.path.join(self.tmp, 'ckpt.log')}"],
            "ickpt listening on ",
        )  # fmt: skip
        self.ickpt_port = int(line.rsplit(":", 1)[1])
        self.ickpt = f"127.0.0.1:{self.ickpt_port}"

    def start(self, name: str, argv: list[str], prefix: str) -> tuple[subprocess.Popen, str]:
        """Start argv, stopped by PID at exit; wait for its first line, which starts `prefix`."""
        self.serial += 1
        stderr_path = os.path.join(self.tmp, f"{name}-{self.serial}.stderr")
        return processes.start(self.stack, name, argv, prefix, stderr_path)

    def format(self, name: str) -> str:
        url = f"file://{os.path.join(self.tmp, name)}"
        argv = [os.path.join(BIN, "imgr"), "format", name, url, "--ickpt", self.ickpt]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)
        return url

    def start_imgr(self, volumes: dict[str, str], *flags: str) -> Imgr:
        self.serial += 1
        config = os.path.join(self.tmp, f"imgr-{self.serial}.toml")
        with open(config, "w") as f:
            for name, url in volumes.items():
                f.write(f'[volumes."{name}"]\nurl = "{url}"\nsecret = "{SECRET}"\n\n')
        started = time.perf_counter()
        proc, line = self.start(
            "imgr",
            [os.path.join(BIN, "imgr"), "run", "--config", config, "--port", "0",
             "--http-port", "0", "--ickpt", self.ickpt, "--id", f"bench-{self.serial}", *flags],
            "imgr listening on ",
        )  # fmt: skip
        words = line.split()
        port = int(words[3].rstrip(",").rsplit(":", 1)[1])
        http_port = int(words[-1].rstrip("/").rsplit(":", 1)[1])
        return Imgr(proc, port, http_port, time.perf_counter() - started)


class Imgr:
    def __init__(self, proc: subprocess.Popen, port: int, http_port: int, startup: float) -> None:
        self.proc, self.port, self.http_port, self.startup = proc, port, http_port, startup

    def volume(self, name: str) -> dict:
        url = f"http://127.0.0.1:{self.http_port}/volume/{name}"
        with urllib.request.urlopen(url, timeout=30) as answer:
            return json.load(answer)

    def checkpoints(self, name: str) -> int:
        return self.volume(name)["checkpoint"]["count"]

    def memory(self) -> dict[str, float]:
        """VmRSS and VmHWM of the imgr process, in MB."""
        found = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0]) * 1024 / 1e6
        return found

    def stop(self) -> None:
        processes.stop(self.proc, "imgr")


# ---------------------------------------------------------------- measuring


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class Writer:
    """One mount with `count` fresh (so exclusively its own) inodes and an object for heads."""

    def __init__(self, client: ImgrClient) -> None:
        self.client = client
        self.inodes: list[int] = []
        self.object = 0
        self.offset = 0

    async def prepare(self, count: int) -> None:
        client = self.client
        while len(self.inodes) < count:
            n = min(MAX_NONCES, count - len(self.inodes))
            first = await client.fetch_nonces("inode", n)
            self.inodes.extend(range(first, first + n))
        self.object = await client.fetch_nonces("object", 1)
        # The object is reported written once, with its first heads.
        first = self.inodes[: min(len(self.inodes), BIG_BATCH)]
        await client.put_entries(self.heads(first), objects={self.object: 1 << 30})

    def heads(self, inodes: list[int]) -> dict[int, Location]:
        heads = {}
        for inode in inodes:
            heads[inode] = Location(self.object, self.offset, HEAD_BYTES)
            self.offset = (self.offset + HEAD_BYTES) % (1 << 29)
        return heads


async def mounted(stack: AsyncExitStack, imgr: Imgr, name: str, count: int) -> list[Writer]:
    return [
        Writer(
            await stack.enter_async_context(ImgrClient.mount("127.0.0.1", imgr.port, name, SECRET))
        )
        for _ in range(count)
    ]


async def measure_puts(imgr: Imgr, name: str, clients: int, batch: int, seconds: float) -> dict:
    async with AsyncExitStack() as stack:
        writers = await mounted(stack, imgr, name, clients)
        async with trio.open_nursery() as nursery:
            for w in writers:
                nursery.start_soon(w.prepare, INODES_PER_CLIENT)
        calls = 0

        async def loop(w: Writer) -> None:
            nonlocal calls
            i = 0
            while trio.current_time() < deadline:
                chunk = [w.inodes[(i + k) % len(w.inodes)] for k in range(batch)]
                i += batch
                await w.client.put_entries(w.heads(chunk))
                calls += 1

        started = time.perf_counter()
        deadline = trio.current_time() + seconds
        async with trio.open_nursery() as nursery:
            for w in writers:
                nursery.start_soon(loop, w)
        elapsed = time.perf_counter() - started
    return {"calls_s": calls / elapsed, "entries_s": calls * batch / elapsed}


async def measure_flush(imgr: Imgr, name: str, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    async with AsyncExitStack() as stack:
        writers = await mounted(stack, imgr, name, clients)
        async with trio.open_nursery() as nursery:
            for w in writers:
                nursery.start_soon(w.prepare, 1)
        for w in writers:
            await w.client.flush()  # nothing pending when the count is read

        async def loop(w: Writer) -> None:
            while trio.current_time() < deadline:
                await w.client.put_entries(w.heads(w.inodes[:1]))
                started = time.perf_counter()
                await w.client.flush()
                latencies.append(time.perf_counter() - started)

        before = imgr.checkpoints(name)
        deadline = trio.current_time() + seconds
        async with trio.open_nursery() as nursery:
            for w in writers:
                nursery.start_soon(loop, w)
        checkpoints = imgr.checkpoints(name) - before
    latencies.sort()
    return {
        "p50_ms": percentile(latencies, 0.50) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        "flushes": len(latencies),
        "checkpoints": checkpoints,
        "flushes_per_checkpoint": len(latencies) / max(1, checkpoints),
    }


async def measure_cas(ickpt_port: int, seconds: float) -> dict:
    """One RemoteStore client: put with the expected version, in a loop."""
    latencies: list[float] = []
    value = os.urandom(256)  # about a checkpoint record
    key = f"bench/imgr/{os.urandom(6).hex()}"
    async with RemoteStore("127.0.0.1", ickpt_port) as store:
        version = 0
        deadline = trio.current_time() + seconds
        started_all = time.perf_counter()
        while trio.current_time() < deadline:
            started = time.perf_counter()
            version = await store.put(key, value, version)
            latencies.append(time.perf_counter() - started)
        elapsed = time.perf_counter() - started_all
        await store.delete(key, version)
    latencies.sort()
    return {"puts_s": len(latencies) / elapsed, "p50_ms": percentile(latencies, 0.5) * 1e3}


async def measure_object_put(url: str, seconds: float) -> dict:
    """Puts of one small object after another on a file:// store."""
    latencies: list[float] = []
    body = os.urandom(SMALL_OBJECT)
    async with open_store(url) as store:
        await store.ensure_container()
        deadline = trio.current_time() + seconds
        i = 0
        while trio.current_time() < deadline:
            started = time.perf_counter()
            await store.put(f"raw/{i}", body)
            latencies.append(time.perf_counter() - started)
            i += 1
        for k in range(i):
            await store.delete(f"raw/{k}")
    latencies.sort()
    return {"p50_ms": percentile(latencies, 0.5) * 1e3, "p99_ms": percentile(latencies, 0.99) * 1e3}


async def fill(imgr: Imgr, name: str, inodes: int) -> tuple[dict, list[int]]:
    """Fetch numbers for and put `inodes` entries from BIG_CLIENTS mounts, then Flush."""
    figures: dict[str, float] = {}
    numbers: list[int] = []
    per_client = math.ceil(inodes / BIG_CLIENTS)
    async with AsyncExitStack() as stack:
        writers = await mounted(stack, imgr, name, BIG_CLIENTS)
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for w in writers:
                nursery.start_soon(w.prepare, per_client)
        figures["prepare_s"] = time.perf_counter() - started
        figures |= {f"prepared_{k}": v for k, v in imgr.memory().items()}

        async def put_all(w: Writer) -> None:
            for i in range(BIG_BATCH, len(w.inodes), BIG_BATCH):
                await w.client.put_entries(w.heads(w.inodes[i : i + BIG_BATCH]))

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for w in writers:
                nursery.start_soon(put_all, w)
        figures["put_s"] = time.perf_counter() - started
        figures["entries_per_s"] = per_client * BIG_CLIENTS / figures["put_s"]
        started = time.perf_counter()
        await writers[0].client.flush()
        figures["flush_s"] = time.perf_counter() - started
        figures |= {f"flushed_{k}": v for k, v in imgr.memory().items()}
        for w in writers:
            numbers.extend(w.inodes)
    # Unmounted: every fresh range and lease dropped.
    figures |= {f"unmounted_{k}": v for k, v in imgr.memory().items()}
    figures["inodes"] = imgr.volume(name)["inodes"]
    return figures, numbers


async def random_gets(imgr: Imgr, name: str, inodes: list[int]) -> dict:
    async with ImgrClient.mount("127.0.0.1", imgr.port, name, SECRET) as client:
        picks = iter(random.sample(inodes, GETS))

        async def worker() -> None:
            for inode in picks:
                await client.get_entry(inode)

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(GETS_IN_FLIGHT):
                nursery.start_soon(worker)
        elapsed = time.perf_counter() - started
    return {"gets_s": GETS / elapsed}


def measure_million(deploy: Deployment, inodes: int, run: int) -> dict:
    name = f"big{run}"
    url = deploy.format(name)
    imgr = deploy.start_imgr({name: url})
    figures = {"fresh_rss_mb": imgr.memory()["VmRSS"]}
    started = time.perf_counter()
    filled, numbers = trio.run(fill, imgr, name, inodes)
    figures["fill_s"] = time.perf_counter() - started
    figures |= filled
    stopped = time.perf_counter()
    imgr.stop()
    figures["stop_s"] = time.perf_counter() - stopped
    imgr = deploy.start_imgr({name: url})
    figures["restart_s"] = imgr.startup
    figures |= {f"restarted_{k}": v for k, v in imgr.memory().items()}
    figures |= trio.run(random_gets, imgr, name, numbers)
    figures |= {f"gets_{k}": v for k, v in imgr.memory().items()}
    imgr.stop()
    return figures


# ---------------------------------------------------------------------- main


def median_cell(samples: list[dict]) -> dict:
    cell = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
    cell["runs"] = samples
    return cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure; the median counts")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one timed loop")
    parser.add_argument("--inodes", type=int, default=1_000_000, help="0 skips the memory test")
    parser.add_argument("--only", default="put,flush,baseline,memory", help="which parts")
    parser.add_argument("--file-dir", default=None, help="where the temp dir goes")
    args = parser.parse_args()
    parts = args.only.split(",")

    def say(text: str) -> None:
        if not args.json:
            print(text, flush=True)

    results: dict = {"runs": args.runs, "seconds": args.seconds}
    with ExitStack() as stack:
        deploy = Deployment(stack, args.file_dir)
        if "baseline" in parts:
            raw = f"file://{os.path.join(deploy.tmp, 'raw')}"
            cas = median_cell([trio.run(measure_cas, deploy.ickpt_port, args.seconds)
                               for _ in range(args.runs)])  # fmt: skip
            put = median_cell([trio.run(measure_object_put, raw, args.seconds)
                               for _ in range(args.runs)])  # fmt: skip
            results["baseline"] = {"ickpt_cas": cas, "object_put": put}
            say(f"baseline: ickpt CAS {cas['puts_s']:.0f}/s (p50 {cas['p50_ms']:.2f} ms); "
                f"file:// {SMALL_OBJECT} B put p50 {put['p50_ms']:.2f} ms "
                f"p99 {put['p99_ms']:.2f} ms")  # fmt: skip
        if "put" in parts or "flush" in parts:
            url = deploy.format("bench")
            imgr = deploy.start_imgr({"bench": url})
        if "put" in parts:
            say(f"{'clients':>7} {'entries/call':>12} {'calls/s':>9} {'entries/s':>10}")
            results["put"] = []
            for clients in CLIENTS:
                for batch in BATCHES:
                    samples = [trio.run(measure_puts, imgr, "bench", clients, batch, args.seconds)
                               for _ in range(args.runs)]  # fmt: skip
                    cell = {"clients": clients, "batch": batch, **median_cell(samples)}
                    results["put"].append(cell)
                    say(f"{clients:>7} {batch:>12} {cell['calls_s']:>9.0f} "
                        f"{cell['entries_s']:>10.0f}")  # fmt: skip
        if "flush" in parts:
            say(f"{'clients':>7} {'flush p50 ms':>12} {'p99 ms':>8} {'flushes':>8} "
                f"{'ckpts':>6} {'flush/ckpt':>10}")  # fmt: skip
            results["flush"] = []
            for clients in CLIENTS:
                samples = [trio.run(measure_flush, imgr, "bench", clients, args.seconds)
                           for _ in range(args.runs)]  # fmt: skip
                cell = {"clients": clients, **median_cell(samples)}
                results["flush"].append(cell)
                say(f"{clients:>7} {cell['p50_ms']:>12.2f} {cell['p99_ms']:>8.2f} "
                    f"{cell['flushes']:>8.0f} {cell['checkpoints']:>6.0f} "
                    f"{cell['flushes_per_checkpoint']:>10.1f}")  # fmt: skip
        if "put" in parts or "flush" in parts:
            results["put_flush_imgr_rss_mb"] = imgr.memory()
            imgr.stop()
        if "memory" in parts and args.inodes:
            samples = [measure_million(deploy, args.inodes, run) for run in range(args.runs)]
            cell = median_cell(samples)
            results["memory"] = cell
            say(f"{args.inodes} inodes: numbers {cell['prepare_s']:.1f} s, "
                f"put {cell['put_s']:.1f} s "
                f"({cell['entries_per_s']:.0f} entries/s), flush {cell['flush_s']:.2f} s\n"
                f"  imgr RSS MB: fresh {cell['fresh_rss_mb']:.0f}, numbered "
                f"{cell['prepared_VmRSS']:.0f}, flushed {cell['flushed_VmRSS']:.0f} "
                f"(peak {cell['flushed_VmHWM']:.0f}), unmounted {cell['unmounted_VmRSS']:.0f}\n"
                f"  restart {cell['restart_s']:.2f} s: RSS {cell['restarted_VmRSS']:.0f} MB; "
                f"{GETS} random Gets at {cell['gets_s']:.0f}/s: RSS {cell['gets_VmRSS']:.0f} MB "
                f"(peak {cell['gets_VmHWM']:.0f})")  # fmt: skip
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
