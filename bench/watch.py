#!/usr/bin/env python3
"""How fast `objfs watch` uploads a drop of many small files.

    bench/watch.py [--json] [--runs 3] [--files 10000] [--settle 2] [--jobs 8]
                   [--backends swift,file] [--workdir DIR]

Starts its own Swift all-in-one (scripts/services, as bench/storage.py does).
Each run, per backend: a fresh container (or store dir) served by `objfs up`,
and `objfs watch LOCAL URL:/bench` with a fresh state; --files files of 4 KiB
of random bytes are written into a staging dir beside LOCAL, then dropped at
once (one rename of the staging dir into LOCAL). Measured: wall seconds from
the drop until the watcher's /stats shows every path synced (the files, the
dropped dir and the root) with nothing due, busy or unrecorded (not yet
durable); files/s = --files / seconds. The figure is the median of --runs
runs, checked against the issue's target of 500 files/s on Swift. Everything
started is stopped by PID and unmounted, the all-in-one's data deleted, at the end, on
error or ^C too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from contextlib import ExitStack
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
# Run as a script, bench/ would come first on sys.path and shadow packages (imgr).
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.append(os.path.dirname(HERE))  # for bench.*

from bench import processes, storage  # noqa: E402
from bench.report import measured, progress  # noqa: E402
from objfs.commands.mountpoints import mounted_type  # noqa: E402

PROG = "bench/watch.py"
SMALL = 4 << 10
TARGET = 500.0  # files/s on Swift
SYNC_SECONDS = 1800.0  # a drop must be synced within this
POLL = 0.05


def objfs_command() -> str:
    return str(Path(sys.executable).parent / "objfs")


def stack_up(stack: ExitStack, url: str, run: Path) -> None:
    """`objfs up` of `url` in `run`, stopped by PID (and unmounted) when `stack` closes."""
    mountpoint = run / "mnt"
    mountpoint.mkdir()
    stack.callback(_unmount, mountpoint)
    argv = [objfs_command(), "up", str(mountpoint), "--url", url, "--state", str(run / "state")]
    argv += ["--http-port", "0", "--imgr-http-port", "0"]
    processes.start(stack, "objfs up", argv, "objfs up:", str(run / "up.err"))


def _unmount(mountpoint: Path) -> None:
    """Only if `objfs up` did not unmount it as it stopped."""
    if mounted_type(mountpoint) is not None:
        subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], capture_output=True)


def start_watch(stack: ExitStack, url: str, run: Path, args: argparse.Namespace) -> str:
    """`objfs watch` of run/local into URL:/bench, stopped by PID at the end; its /stats URL."""
    local = run / "local"
    local.mkdir()
    argv = [objfs_command(), "watch", str(local), f"{url}:/bench", "--state", str(run / "watch")]
    argv += ["--settle", str(args.settle), "--jobs", str(args.jobs), "--http-port", "0"]
    _, line = processes.start(stack, "objfs watch", argv, "objfs watch:", str(run / "watch.err"))
    return line.rsplit("status at ", 1)[1].rstrip("/") + "/stats"


def stats(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.load(answer)


def synced(figures: dict, paths: int) -> bool:
    quiet = not (figures["due"] or figures["busy"] or figures["renames"])
    return quiet and figures["unrecorded"] == 0 and figures["synced"] >= paths


def drop(run: Path, files: int) -> Path:
    """`files` files of 4 KiB in a staging dir beside the watched one; the staging dir."""
    staging = run / "staging"
    staging.mkdir()
    for i in range(files):
        (staging / f"f{i:06d}").write_bytes(os.urandom(SMALL))
    return staging


def one_run(url: str, run: Path, args: argparse.Namespace) -> dict:
    """Seconds from the drop until every file is synced and durable."""
    with ExitStack() as stack:
        stack_up(stack, url, run)
        stats_url = start_watch(stack, url, run, args)
        paths = args.files + 2  # the files, the dropped dir, the root
        staging = drop(run, args.files)
        started = time.perf_counter()
        os.rename(staging, run / "local" / "drop")
        deadline = time.monotonic() + SYNC_SECONDS
        while not synced(figures := stats(stats_url), paths):
            if time.monotonic() > deadline:
                raise RuntimeError(f"not synced in {SYNC_SECONDS:.0f} s: {figures}")
            time.sleep(POLL)
        seconds = time.perf_counter() - started
    if figures["failures"]:
        raise RuntimeError(f"failing paths: {figures['failures'][:3]}")
    return {"seconds": seconds, "files_s": args.files / seconds, "syncs": figures["syncs"],
            "data_bytes": figures["data_bytes"]}  # fmt: skip


def measure(args: argparse.Namespace, say) -> dict:
    # SIGTERM unwinds like ^C, so that the cleanup below runs.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="bench-watch-", dir=args.workdir))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        os.environ["OBJFS_RUN_DIR"] = str(workdir / "registry")  # its own running stacks
        swift = None  # the all-in-one's data goes when it stops
        if "swift" in args.backends:
            say("starting the Swift all-in-one")
            swift = storage.start_service("swift", stack)
        results = {}
        for backend in args.backends:
            runs = []
            for n in range(args.runs):
                run = workdir / f"{backend}-{n}"
                run.mkdir()
                if swift is not None and backend == "swift":
                    url = f"swift://bench-watch-{uuid.uuid4().hex[:12]}?" + storage.query(
                        auth_url=swift["auth_url"], user=swift["user"], key=swift["key"]
                    )
                else:
                    url = f"file://{run / 'store'}"
                say(f"{backend}: run {n + 1} of {args.runs}")
                runs.append(one_run(url, run, args))
                say(f"  {runs[-1]['files_s']:,.0f} files/s")
            results[backend] = {
                "runs": runs,
                "files_s": statistics.median(r["files_s"] for r in runs),
                "seconds": statistics.median(r["seconds"] for r in runs),
            }
    config = {"runs": args.runs, "files": args.files, "file_bytes": SMALL,
              "settle": args.settle, "jobs": args.jobs}  # fmt: skip
    return {"config": config, "results": results, "check": check(results)}


def check(results: dict) -> dict | None:
    """The issue's target, if Swift was measured."""
    if "swift" not in results:
        return None
    value = results["swift"]["files_s"]
    return {"target": f"swift >= {TARGET:.0f} files/s", "value": value, "passed": value >= TARGET}


def print_table(results: dict) -> None:
    config = results["config"]
    print(f"\nmedians of {config['runs']} runs: {config['files']} files of 4 KiB dropped at once; "
          f"objfs watch --settle {config['settle']} --jobs {config['jobs']}")  # fmt: skip
    for backend, row in results["results"].items():
        print(f"  {backend:<6} {row['files_s']:>8,.0f} files/s  ({row['seconds']:.1f} s)")
    check = results["check"]
    if check is not None:
        mark = "PASS" if check["passed"] else "FAIL"
        print(f"\n  [{mark}] {check['target']}: {check['value']:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--runs", type=int, default=3, help="runs; the median counts (3)")
    parser.add_argument("--files", type=int, default=10_000, help="4 KiB files (10000)")
    parser.add_argument("--settle", type=float, default=2.0, help="objfs watch --settle (2)")
    parser.add_argument("--jobs", type=int, default=8, help="objfs watch --jobs (8)")
    parser.add_argument("--backends", default="swift,file", help="swift,file (both)")
    parser.add_argument("--workdir", default=None, help="where the temp dir goes (/tmp)")
    args = parser.parse_args()
    args.backends = [b for b in args.backends.split(",") if b]
    if min(args.runs, args.files, args.jobs) < 1 or args.settle < 0:
        sys.exit(f"{PROG}: --runs, --files, --jobs must be >= 1 and --settle >= 0")
    if not args.backends or set(args.backends) - {"swift", "file"}:
        sys.exit(f"{PROG}: --backends takes swift and/or file")

    say = progress(args.json)
    results = measured(PROG, lambda: measure(args, say), args.json, print_table)
    if results["check"] is not None and not results["check"]["passed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
