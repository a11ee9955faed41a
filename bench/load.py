#!/usr/bin/env python3
"""Speed of `objfs load` into Swift, against `rclone copy` and the raw PUT rate.

    bench/load.py [--json] [--runs 3] [--files 100000] [--dirs 1000] [--big-gib 2]
                  [--jobs N] [--segment-mib N] [--sweep] [--workdir DIR]

Generates two trees of random bytes in a temp dir: --files files of 4 KiB spread
over --dirs directories, and --big-gib GiB of 64 MiB files. Each run starts its own
Swift all-in-one (scripts/services, as bench/storage.py does) and measures, on wall
clock of the subprocess, each into a fresh container (and state dir):
- `objfs load SMALL swift://... --jobs N --segment-mib N` (files/s = entries of
  the tree, files and directories, per second);
- `rclone copy SMALL benchswift:CONTAINER` with rclone's default flags, the remote
  defined by RCLONE_CONFIG_* variables as bench/mount.py does (the same entries/s);
- `objfs load BIG swift://...` (MB/s of file data);
- bench/storage.py's PUT MB/s of its largest objects (16 MiB) through objfs.storage
  and through the raw SDK, at each concurrency it measures: the best cell is the
  baseline.
After each run its Swift is stopped and its data deleted, containers and all:
Swift deletes rclone's objects one by one no faster than rclone wrote them (~115/s
here, 14 min for 100,000), a fresh Swift costs 3 s. Each figure is the median of --runs runs,
checked against the targets of the issue: objfs/rclone >= 10x, objfs >= 3,000 files/s,
big-tree MB/s >= 80% of the best raw PUT MB/s. --sweep also loads the big tree once
per --jobs 4,8 x --segment-mib 16,32,64 (each on a fresh Swift) and reports each.
Everything started is stopped and removed at the end, on error or ^C too.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
# Run as a script, bench/ would come first on sys.path and shadow packages (imgr).
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.append(os.path.dirname(HERE))  # for bench.*

from bench import mount, storage  # noqa: E402
from bench.report import measured, progress  # noqa: E402

PROG = "bench/load.py"
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
SMALL = 4 * KiB
BIG = 64 * MiB
# From --sweep on this machine (see the module's report): the best for the big tree.
JOBS, SEGMENT_MIB = 8, 32
SWEEP_JOBS, SWEEP_SEGMENT_MIB = (4, 8), (16, 32, 64)
COMMAND_SECONDS = 3600.0  # one load or copy must finish within this
RCLONE_FLAGS: list[str] = []  # rclone's defaults: --transfers 4 --checkers 8
FILES_TARGET, RATIO_TARGET, PERCENT_TARGET = 3000.0, 10.0, 80.0


# ---------------------------------------------------------------- trees


def small_tree(root: Path, files: int, dirs: int) -> int:
    """`files` files of 4 KiB of random bytes in `dirs` directories; its entries."""
    for d in range(dirs):
        (root / f"d{d:04d}").mkdir(parents=True)
    for i in range(files):
        (root / f"d{i % dirs:04d}" / f"f{i:06d}").write_bytes(os.urandom(SMALL))
    return files + dirs + 1  # and the root


def big_tree(root: Path, total: int) -> int:
    """`total` bytes of random bytes in 64 MiB files (the last may be shorter); its bytes."""
    root.mkdir()
    done = 0
    while done < total:
        size = min(BIG, total - done)
        (root / f"big{done // BIG:03d}").write_bytes(os.urandom(size))
        done += size
    return total


# ---------------------------------------------------------------- commands


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall seconds of argv and its stdout; RuntimeError with its stderr if it fails."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=COMMAND_SECONDS)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = done.stderr.strip()[-2000:]
        raise RuntimeError(f"{argv[0]} {argv[1]} exited {done.returncode}:\n{tail}")
    return seconds, done.stdout


class Swift:
    """An all-in-one, stopped and its data deleted when `stack` closes; URLs and rclone."""

    def __init__(self, stack: ExitStack, workdir: Path) -> None:
        self.info = storage.start_service("swift", stack)
        self.env = mount.rclone_env(self.info)
        self.config = workdir / "rclone.conf"  # empty: the remote comes from env
        self.config.touch()

    def url(self, container: str) -> str:
        info = self.info
        return f"swift://{container}?" + storage.query(
            auth_url=info["auth_url"], user=info["user"], key=info["key"]
        )

    def rclone(self, *args: str) -> float:
        argv = ["rclone", *args, "--config", str(self.config)]
        return timed(argv, self.env)[0]


def objfs_load(
    swift: Swift, tree: Path, state: Path, jobs: int, segment_mib: int
) -> tuple[float, int]:
    """Seconds of `objfs load` of tree into a fresh container, and the entries it loaded."""
    container = f"bench-load-{uuid.uuid4().hex[:12]}"
    objfs = str(Path(sys.executable).parent / "objfs")
    argv = [objfs, "load", str(tree), swift.url(container), "--state", str(state)]
    argv += ["--jobs", str(jobs), "--segment-mib", str(segment_mib)]
    seconds, out = timed(argv)
    found = re.search(r": (\d+) entries", out)
    if found is None:
        raise RuntimeError(f"objfs load printed no summary: {out!r}")
    return seconds, int(found.group(1))


def rclone_copy(swift: Swift, tree: Path) -> float:
    container = f"bench-rclone-{uuid.uuid4().hex[:12]}"
    return swift.rclone("copy", str(tree), f"benchswift:{container}", *RCLONE_FLAGS)


def best_put(swift: Swift) -> dict:
    """bench/storage.py's PUT MB/s of its largest objects, best of objfs.storage and raw SDK."""
    container = f"bench-put-{uuid.uuid4().hex[:12]}"
    size = max(storage.SIZES)
    cells = []
    for label, target in [
        ("swift", swift.url(container)),
        ("swift-raw", storage.raw_swift(swift.info, container + "-raw")),
    ]:
        for inflight in storage.INFLIGHT:
            mbs = storage.measure_cell(target, size, inflight)["put_mbs"]
            cells.append({"backend": label, "size": size, "inflight": inflight, "put_mbs": mbs})
    return max(cells, key=lambda c: c["put_mbs"])


# ---------------------------------------------------------------- runs


def one_run(trees: dict, args: argparse.Namespace, workdir: Path, say) -> dict:
    with ExitStack() as stack:  # stops this run's Swift and deletes its data
        swift = Swift(stack, workdir)
        state = Path(tempfile.mkdtemp(prefix="state-", dir=workdir))
        stack.callback(shutil.rmtree, state, ignore_errors=True)
        say("  objfs load, small tree")
        seconds, entries = objfs_load(
            swift, trees["small"], state / "small", args.jobs, args.segment_mib
        )
        if entries != trees["entries"]:
            raise RuntimeError(f"objfs load loaded {entries} entries of {trees['entries']}")
        say(f"  ({seconds:.1f} s); rclone copy, small tree")
        rclone_s = rclone_copy(swift, trees["small"])
        say(f"  ({rclone_s:.1f} s); objfs load, big tree")
        big_s, _ = objfs_load(swift, trees["big"], state / "big", args.jobs, args.segment_mib)
        say(f"  ({big_s:.1f} s); storage.py PUT cells")
        put = best_put(swift)
    load_files_s = trees["entries"] / seconds
    rclone_files_s = trees["entries"] / rclone_s
    load_mbs = trees["big_bytes"] / big_s / 1e6
    return {
        "load_seconds": seconds,
        "load_files_s": load_files_s,
        "rclone_seconds": rclone_s,
        "rclone_files_s": rclone_files_s,
        "ratio": load_files_s / rclone_files_s,
        "big_seconds": big_s,
        "load_mbs": load_mbs,
        "put_mbs": put["put_mbs"],
        "put_cell": put,
        "percent": 100 * load_mbs / put["put_mbs"],
    }


def sweep(trees: dict, workdir: Path, say) -> list[dict]:
    """The big tree once per --jobs x --segment-mib of the sweep: MB/s of each."""
    rows = []
    for jobs in SWEEP_JOBS:
        for segment_mib in SWEEP_SEGMENT_MIB:
            say(f"sweep: big tree with --jobs {jobs} --segment-mib {segment_mib}")
            with ExitStack() as stack:
                swift = Swift(stack, workdir)
                state = Path(tempfile.mkdtemp(prefix="sweep-", dir=workdir))
                stack.callback(shutil.rmtree, state, ignore_errors=True)
                seconds, _ = objfs_load(swift, trees["big"], state, jobs, segment_mib)
            mbs = trees["big_bytes"] / seconds / 1e6
            rows.append({"jobs": jobs, "segment_mib": segment_mib, "mbs": mbs})
    return rows


# ---------------------------------------------------------------- results

# (key, label, unit) of the table, in order.
FIGURES = [
    ("load_files_s", "objfs load, small tree", "files/s"),
    ("rclone_files_s", "rclone copy, small tree", "files/s"),
    ("ratio", "objfs load / rclone copy", "x"),
    ("load_mbs", "objfs load, big tree", "MB/s"),
    ("put_mbs", "best raw PUT (storage.py)", "MB/s"),
    ("percent", "objfs load / best PUT", "%"),
]


def checks(median: dict) -> list[dict]:
    rows = [
        (f"objfs load >= {FILES_TARGET:,.0f} files/s", "load_files_s", FILES_TARGET),
        (f"objfs load >= {RATIO_TARGET:.0f}x rclone copy", "ratio", RATIO_TARGET),
        (f"big tree >= {PERCENT_TARGET:.0f}% of best PUT MB/s", "percent", PERCENT_TARGET),
    ]
    return [
        {"target": label, "value": median[key], "passed": median[key] >= floor}
        for label, key, floor in rows
    ]


def print_table(results: dict) -> None:
    config, median = results["config"], results["median"]
    print(
        f"\nmedians of {config['runs']} runs; small tree {config['files']} files of 4 KiB in "
        f"{config['dirs']} dirs ({config['entries']} entries), big tree "
        f"{config['big_bytes'] / GiB:.3g} GiB in 64 MiB files; objfs load --jobs "
        f"{config['jobs']} --segment-mib {config['segment_mib']}; rclone copy "
        f"{' '.join(config['rclone_flags']) or '(default flags: --transfers 4 --checkers 8)'}"
    )
    for key, label, unit in FIGURES:
        value = median[key]
        shown = f"{value:,.0f}" if value >= 100 else f"{value:.2f}"
        print(f"  {label:<28} {shown:>10} {unit}")
    cell = results["runs"][0]["put_cell"]
    print(f"  (best PUT cell of run 1: {cell['backend']}, {cell['size'] // MiB} MiB objects, "
          f"{cell['inflight']} in flight)")  # fmt: skip
    for row in results.get("sweep", []):
        print(f"  sweep --jobs {row['jobs']} --segment-mib {row['segment_mib']:<3}: "
              f"{row['mbs']:,.0f} MB/s")  # fmt: skip
    print("\ntargets of the issue:")
    for row in results["checks"]:
        mark = "PASS" if row["passed"] else "FAIL"
        print(f"  [{mark}] {row['target']:<40} {row['value']:,.2f}")


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--runs", type=int, default=3, help="runs; the median counts")
    parser.add_argument("--files", type=int, default=100_000, help="4 KiB files (100000)")
    parser.add_argument("--dirs", type=int, default=1000, help="directories they are in (1000)")
    parser.add_argument("--big-gib", type=float, default=2.0, help="GiB of 64 MiB files (2)")
    parser.add_argument("--jobs", type=int, default=JOBS, help=f"objfs load --jobs ({JOBS})")
    parser.add_argument("--segment-mib", type=int, default=SEGMENT_MIB,
                        help=f"objfs load --segment-mib ({SEGMENT_MIB})")  # fmt: skip
    parser.add_argument("--sweep", action="store_true", help="also try --jobs x --segment-mib")
    parser.add_argument("--workdir", default=None, help="where the temp dir goes (/tmp)")
    args = parser.parse_args()

    say = progress(args.json)
    if min(args.runs, args.files, args.dirs, args.jobs, args.segment_mib) < 1 or (
        args.big_gib <= 0 or args.dirs > args.files
    ):
        sys.exit(f"{PROG}: --runs, --files, --dirs, --jobs, --segment-mib must be >= 1, "
                 "--dirs <= --files and --big-gib > 0")  # fmt: skip
    if not shutil.which("rclone"):
        sys.exit(f"{PROG}: rclone is not on PATH (scripts/install-deps installs it)")
    measured(PROG, lambda: measure(args, say), args.json, print_table)


def measure(args: argparse.Namespace, say) -> dict:
    # SIGTERM unwinds like ^C, so that the cleanup below runs.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.monotonic()
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="bench-load-", dir=args.workdir))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        say(f"generating {args.files} files in {args.dirs} dirs and {args.big_gib} GiB")
        trees = {"small": workdir / "small", "big": workdir / "big"}
        trees["entries"] = small_tree(trees["small"], args.files, args.dirs)
        trees["big_bytes"] = big_tree(trees["big"], int(args.big_gib * GiB))
        runs = []
        for run in range(args.runs):
            say(f"run {run + 1} of {args.runs}")
            runs.append(one_run(trees, args, workdir, say))
        swept = sweep(trees, workdir, say) if args.sweep else None
    median = {key: statistics.median(r[key] for r in runs) for key, _, _ in FIGURES}
    results = {
        "config": {
            "runs": args.runs,
            "files": args.files,
            "dirs": args.dirs,
            "entries": trees["entries"],
            "file_bytes": SMALL,
            "big_bytes": trees["big_bytes"],
            "big_file_bytes": BIG,
            "jobs": args.jobs,
            "segment_mib": args.segment_mib,
            "rclone_flags": RCLONE_FLAGS,
        },
        "runs": runs,
        "median": median,
        "checks": checks(median),
        "seconds": time.monotonic() - started,
    }
    if swept is not None:
        results["sweep"] = swept
    return results


if __name__ == "__main__":
    main()
