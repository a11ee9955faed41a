#!/usr/bin/env python3
"""Throughput of file workloads on a local disk, an rclone mount and an objfs mount.

    bench/mount.py [--json] [--runs 3] [--targets local,rclone,objfs] [--backends file,swift]
                   [--size-mib 1024] [--files 10000] [--rss-gib 5] [--workdir DIR] [--cpus 0]

Targets, measured in the same run:
- local: a directory on the local disk (of --workdir), the baseline;
- rclone: `rclone mount --vfs-cache-mode writes` of an rclone `local` remote on a temp
  dir (file) or of an rclone `swift` remote on the Swift all-in-one (swift), both
  defined by RCLONE_CONFIG_* variables over an empty temp config file;
- objfs: processes.objfs_mount() of a file:// or swift:// volume.

Workloads per target and backend, on wall clock, each in a fresh directory:
1. write: --size-mib MiB in 1 MiB writes, fsync, close (MB/s);
2. read (cold): that file in 1 MiB reads (MB/s). Before it: sync, posix_fadvise
   DONTNEED on the file, and `echo 3 > /proc/sys/vm/drop_caches` (as root; which
   also drops the pages of the file:// backend dirs). rclone and objfs are remounted
   first (--cold remount, the default): rclone on a fresh --cache-dir, after its
   upload of the file finished, as in writes mode it would otherwise serve the read
   from its local copy; objfs by leaving and entering objfs_mount again with the
   same url, mountpoint and workdir (whatever objfs keeps in its workdir stays).
   --cold drop skips the remounts. Swift keeps its objects in /dev/shm, always warm.
3. creates: --files files of 4 KiB in one directory, then os.sync() and an fsync of
   the directory (creates/s). On objfs that fsync returns once every file is in the
   object store and in a checkpoint (os.sync() alone never reaches a FUSE daemon);
4. stats: os.stat of each of them (stats/s);
5. ls -l: `ls -l` of that directory to /dev/null (seconds), after an untimed
   `ls -ld` that reloads ls itself after the cache drop.
`write, stored` and `creates, stored` time the same work until the bytes are in the
backend: for local and objfs that is the figure above (their fsync means it); rclone's
fsync and sync only reach its local cache (uploads start --vfs-write-back, 5 s, after
the close), so for it the time runs on until its VFS reports no upload queued or in
progress (rc vfs/stats) and the remote itself lists the files with their sizes (rc
operations/list). The Swift creates target compares objfs and rclone on this figure,
the work done to the same point; the cached-only ratio is printed beside it.
objfs alone, with --rss-gib > 0: a fresh file:// volume and mount, --rss-gib GiB
written to one file while the iclient VmRSS is sampled every 0.2 s; VmHWM at the end.

--cpus 0 pins the bench and everything it starts (daemons, rclone, Swift) to those CPUs.
Stats and creates are round trips between the program and a FUSE daemon; on a VM a
wakeup on another CPU is costly (on these 2-vCPU machines a getattr takes ~80 us when
the two run on different CPUs and ~33 us on one), so the same targets are worth
measuring both ways.

Each figure is the median of --runs runs; the table gives objfs/local and
objfs/rclone (of the figures: for ls -l, seconds, > 1 is slower) and checks the
targets of the issue. Everything started is stopped by PID, unmounted and removed
at the end, on error or ^C too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote

HERE = os.path.dirname(os.path.abspath(__file__))
# Run as a script, bench/ would come first on sys.path and shadow packages (imgr).
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.append(os.path.dirname(HERE))  # for bench.processes

from bench import processes  # noqa: E402
from bench.report import measured, progress  # noqa: E402
from objfs.durable import fsync_dir  # noqa: E402

PROG = "bench/mount.py"
SERVICES = os.path.join(HERE, "..", "scripts", "services")
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
SMALL = 4 * KiB  # bytes of each created file
MOUNT_SECONDS = 30.0  # a FUSE mount must show in /proc/self/mountinfo within this
UPLOAD_SECONDS = 1800.0  # rclone must finish its uploads within this
UNMOUNT_SECONDS = 30.0  # rclone must exit this long after its unmount
RSS_INTERVAL = 0.2
TARGETS = ["local", "rclone", "objfs"]
BACKENDS = ["file", "swift"]
DISK = "disk"  # the backend label of `local`
# (key, label, unit): the figures of one run, in table order.
WORKLOADS = [
    ("write_mbs", "write", "MB/s"),
    ("read_mbs", "read (cold)", "MB/s"),
    ("creates_s", "creates", "/s"),
    ("stats_s", "stats", "/s"),
    ("ls_seconds", "ls -l", "s"),
    ("write_stored_mbs", "write, stored", "MB/s"),
    ("creates_stored_s", "creates, stored", "/s"),
]


class Unavailable(Exception):
    """A target, backend or tool this run cannot have: one line, no traceback."""


# ---------------------------------------------------------------- mounts


def mounted(path: Path) -> bool:
    """Whether path is a mount point now, per /proc/self/mountinfo."""
    wanted = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            # Spaces, tabs, newlines and backslashes are written as octal escapes.
            point = point.encode().decode("unicode_escape")
            if point == wanted:
                return True
    return False


def wait_mounted(path: Path, proc: subprocess.Popen, name: str, log: Path) -> None:
    deadline = time.monotonic() + MOUNT_SECONDS
    while not mounted(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            state = f"exited {proc.returncode}" if proc.poll() is not None else "timed out"
            raise RuntimeError(f"{name} did not mount {path} ({state}):\n{tail}")
        time.sleep(0.05)


def unmount(path: Path) -> None:
    """fusermount3 -u, then -uz (lazy) if that did not do it."""
    for flags in ("-u", "-uz"):
        if not mounted(path):
            return
        subprocess.run(["fusermount3", flags, str(path)], capture_output=True, check=False)
    if mounted(path):
        print(f"bench: {path} is still mounted", file=sys.stderr)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rclone:
    """`rclone mount --vfs-cache-mode writes` of `remote` at a mountpoint in workdir."""

    def __init__(self, remote: str, env: dict[str, str], workdir: Path) -> None:
        self.remote, self.env, self.workdir = remote, env, workdir
        self.mountpoint = workdir / "mnt"
        self.mountpoint.mkdir()
        self.config = workdir / "rclone.conf"  # empty: the remotes come from env
        self.config.touch()
        self.serial = 0
        self.proc: subprocess.Popen | None = None
        self.rc_port = 0

    def mount(self) -> None:
        self.serial += 1
        cache = self.workdir / f"cache-{self.serial}"  # a fresh VFS cache each mount
        log = self.workdir / f"rclone-{self.serial}.log"
        self.rc_port = free_port()
        argv = [
            "rclone", "mount", self.remote, str(self.mountpoint),
            "--config", str(self.config), "--vfs-cache-mode", "writes",
            "--cache-dir", str(cache), "--log-file", str(log), "--log-level", "NOTICE",
            "--rc", "--rc-addr", f"127.0.0.1:{self.rc_port}", "--rc-no-auth",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # ^C reaches us only; we unmount it in order
        )
        try:
            wait_mounted(self.mountpoint, self.proc, "rclone", log)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Unmount, let it exit, then stop it by PID; lazy unmount if still mounted."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None and mounted(self.mountpoint):
            subprocess.run(["fusermount3", "-u", str(self.mountpoint)], capture_output=True)
            try:
                proc.wait(UNMOUNT_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        processes.stop(proc, "rclone")
        unmount(self.mountpoint)

    def rc(self, command: str, params: dict) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.rc_port}/{command}",
            data=json.dumps(params).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.load(answer)

    def backend_files(self, directory: Path) -> tuple[int, int]:
        """Files and bytes in directory on the remote itself (not through the VFS)."""
        relative = str(directory.relative_to(self.mountpoint))
        listing = self.rc("operations/list", {"fs": self.remote, "remote": relative})["list"]
        files = [e for e in listing if not e["IsDir"]]
        return len(files), sum(e["Size"] for e in files)

    def wait_uploaded(self, directory: Path, count: int, size: int) -> float:
        """Seconds until the VFS has no upload queued or in progress and the remote has
        `count` files of `size` bytes in all in directory.

        The listing is needed: FUSE sends the release of a file after close() returned,
        so right after it the upload may not be queued yet.
        """
        started = time.perf_counter()
        deadline = time.monotonic() + UPLOAD_SECONDS
        while True:
            cache = self.rc("vfs/stats", {})["diskCache"]
            if cache.get("erroredFiles"):
                raise RuntimeError(f"rclone: {cache['erroredFiles']} uploads failed")
            idle = cache["uploadsInProgress"] == 0 and cache["uploadsQueued"] == 0
            if idle and self.backend_files(directory) == (count, size):
                return time.perf_counter() - started
            if time.monotonic() > deadline:
                raise RuntimeError(f"rclone: uploads not done in {UPLOAD_SECONDS:.0f} s")
            time.sleep(0.05)


class Target:
    """Where a run works; how it makes the next read cold; how it waits for uploads."""

    name = ""

    def __init__(self, root: Path) -> None:
        self.root = root

    def remount(self) -> None:
        pass

    def wait_uploaded(self, directory: Path, count: int, size: int) -> float | None:
        """Seconds until the backend has what was written, where that lags; else None."""
        return None


class LocalTarget(Target):
    name = "local"


class RcloneTarget(Target):
    name = "rclone"

    def __init__(self, stack: ExitStack, remote: str, env: dict[str, str], workdir: Path):
        self.rclone = Rclone(remote, env, workdir)
        stack.callback(self.rclone.stop)
        self.rclone.mount()
        super().__init__(self.rclone.mountpoint)

    def remount(self) -> None:
        # The caller waited for the upload: a fresh cache dir would not have the file.
        self.rclone.stop()
        self.rclone.mount()

    def wait_uploaded(self, directory: Path, count: int, size: int) -> float | None:
        return self.rclone.wait_uploaded(directory, count, size)


class ObjfsTarget(Target):
    name = "objfs"

    def __init__(self, stack: ExitStack, url: str, workdir: Path) -> None:
        self.url = url
        self.mountpoint = workdir / "mnt"
        self.state = workdir / "objfs"
        self.mountpoint.mkdir()
        self.state.mkdir()
        self.inner = ExitStack()
        stack.callback(self.close)
        self.mount()
        super().__init__(self.mountpoint)

    def mount(self) -> None:
        self.pid = self.inner.enter_context(
            processes.objfs_mount(self.url, self.mountpoint, self.state)
        )

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            unmount(self.mountpoint)

    def remount(self) -> None:
        self.close()
        self.inner = ExitStack()
        self.mount()


# ---------------------------------------------------------------- workloads


def drop_caches(path: str) -> bool:
    """Sync, drop the file's pages, then the whole page cache if we may (root)."""
    os.sync()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def write_file(path: str, size: int, block: bytes) -> float:
    """Seconds to write size bytes in len(block) writes, fsync and close."""
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(block)
        for _ in range(size // len(block)):
            done = 0
            while done < len(block):
                done += os.write(fd, view[done:])
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - started


def read_file(path: str, size: int) -> float:
    buffer = bytearray(MiB)
    total = 0
    started = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            total += n
    elapsed = time.perf_counter() - started
    if total != size:
        raise RuntimeError(f"read {total} bytes of {path}, wrote {size}")
    return elapsed


def one_run(target: Target, run: int, args: argparse.Namespace) -> dict:
    top = target.root / f"run{run}-{uuid.uuid4().hex[:8]}"
    top.mkdir()
    size = args.size_mib * MiB
    big = str(top / "big")
    figures: dict = {}

    write_s = write_file(big, size, os.urandom(MiB))
    figures["write_mbs"] = size / write_s / 1e6
    uploaded = target.wait_uploaded(top, 1, size) or 0.0
    figures["write_stored_mbs"] = size / (write_s + uploaded) / 1e6
    if args.cold == "remount":
        target.remount()
    figures["dropped_caches"] = drop_caches(big)
    figures["read_mbs"] = size / read_file(big, size) / 1e6

    directory = top / "files"
    directory.mkdir()
    names = [str(directory / f"f{i:06d}") for i in range(args.files)]
    body = os.urandom(SMALL)
    started = time.perf_counter()
    for name in names:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, body)
        finally:
            os.close(fd)
    os.sync()
    fsync_dir(directory)
    creates_s = time.perf_counter() - started
    figures["creates_s"] = args.files / creates_s
    uploaded = target.wait_uploaded(directory, args.files, args.files * SMALL) or 0.0
    figures["creates_stored_s"] = args.files / (creates_s + uploaded)

    started = time.perf_counter()
    for name in names:
        os.stat(name)
    figures["stats_s"] = args.files / (time.perf_counter() - started)

    # Not timed: brings ls and its libraries back into the page cache after the drop.
    subprocess.run(["ls", "-ld", str(directory)], stdout=subprocess.DEVNULL, check=True)
    started = time.perf_counter()
    subprocess.run(["ls", "-l", str(directory)], stdout=subprocess.DEVNULL, check=True)
    figures["ls_seconds"] = time.perf_counter() - started

    shutil.rmtree(top)
    return figures


class RssSampler(threading.Thread):
    """VmRSS of a PID every RSS_INTERVAL seconds until stopped; the largest, in MB."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0.0
        self.samples = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            rss = proc_status(self.pid).get("VmRSS")
            if rss is not None:
                self.peak = max(self.peak, rss)
                self.samples += 1
            self.halt.wait(RSS_INTERVAL)

    def stop(self) -> None:
        self.halt.set()
        self.join()


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, in MB; empty once it is gone."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0]) * KiB / 1e6
    except (FileNotFoundError, ProcessLookupError):
        pass
    return found


def rss_run(workdir: Path, gib: int) -> dict:
    """A fresh file:// volume and objfs mount; write gib GiB while sampling the iclient."""
    with ExitStack() as stack:
        store = workdir / "store"
        store.mkdir()
        target = ObjfsTarget(stack, f"file://{store}", workdir)
        sampler = RssSampler(target.pid)
        sampler.start()
        try:
            started_rss = proc_status(target.pid).get("VmRSS", 0.0)
            path = str(target.root / "rss-big")
            write_s = write_file(path, gib * GiB, os.urandom(MiB))
        finally:
            sampler.stop()
        status = proc_status(target.pid)
        os.unlink(path)
    hwm = status.get("VmHWM", 0.0)
    return {
        "start_rss_mb": started_rss,
        "sampled_peak_rss_mb": sampler.peak,
        "vmhwm_mb": hwm,
        "peak_rss_mb": max(sampler.peak, hwm),
        "samples": sampler.samples,
        "write_mbs": gib * GiB / write_s / 1e6,
    }


# ---------------------------------------------------------------- setup


def check_available(targets: list[str], backends: list[str]) -> None:
    for name in targets:
        if name not in TARGETS:
            raise Unavailable(f"unknown target {name!r} (known: {','.join(TARGETS)})")
    for name in backends:
        if name not in BACKENDS:
            raise Unavailable(f"unknown backend {name!r} (known: {','.join(BACKENDS)})")
    fuse = [t for t in targets if t != "local"]
    if fuse and not os.path.exists("/dev/fuse"):
        raise Unavailable(f"target {fuse[0]} not available: no /dev/fuse")
    if fuse and not shutil.which("fusermount3"):
        raise Unavailable(f"target {fuse[0]} not available: fusermount3 is not on PATH")
    if "rclone" in targets and not shutil.which("rclone"):
        raise Unavailable("target rclone not available: rclone is not on PATH")
    if "objfs" in targets and not hasattr(processes, "objfs_mount"):
        raise Unavailable(
            "target objfs not available: bench/processes.py has no objfs_mount() yet "
            "(use --targets local,rclone)"
        )


def start_swift(stack: ExitStack, workdir: Path) -> dict:
    directory = workdir / "swift"
    directory.mkdir()
    argv = [sys.executable, SERVICES, "swift", "start", "--dir", str(directory), "-q"]
    stack.callback(
        subprocess.run,
        [sys.executable, SERVICES, "swift", "stop", "--dir", str(directory), "--purge", "-q"],
        capture_output=True,
    )
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise Unavailable(f"backend swift not available: the Swift all-in-one failed: {last}")
    return json.loads(result.stdout)


def swift_container(info: dict, name: str) -> None:
    from swiftclient.client import Connection

    Connection(authurl=info["auth_url"], user=info["user"], key=info["key"]).put_container(name)


def rclone_env(swift: dict | None) -> dict[str, str]:
    """The environment of rclone: remote `benchfile` and, with Swift, `benchswift`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
    env["RCLONE_CONFIG_BENCHFILE_TYPE"] = "local"
    if swift:
        env |= {
            "RCLONE_CONFIG_BENCHSWIFT_TYPE": "swift",
            "RCLONE_CONFIG_BENCHSWIFT_AUTH": swift["auth_url"],
            "RCLONE_CONFIG_BENCHSWIFT_USER": swift["user"],
            "RCLONE_CONFIG_BENCHSWIFT_KEY": swift["key"],
            "RCLONE_CONFIG_BENCHSWIFT_AUTH_VERSION": "1",
        }
    return env


def query(**params: str) -> str:
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())


def open_target(
    stack: ExitStack, target: str, backend: str, workdir: Path, swift: dict | None
) -> Target:
    """Target `target` over `backend`, in a fresh dir under workdir."""
    home = Path(tempfile.mkdtemp(prefix=f"{target}-{backend}-", dir=workdir))
    if target == "local":
        (home / "dir").mkdir()
        return LocalTarget(home / "dir")
    container = f"bench-{target}-{uuid.uuid4().hex[:12]}"
    if backend == "file":
        store = home / "store"
        store.mkdir()
        remote, url = f"benchfile:{store}", f"file://{store}"
    else:
        assert swift is not None
        swift_container(swift, container)
        remote = f"benchswift:{container}"
        auth = query(auth_url=swift["auth_url"], user=swift["user"], key=swift["key"])
        url = f"swift://{container}?{auth}"
    if target == "rclone":
        return RcloneTarget(stack, remote, rclone_env(swift), home)
    return ObjfsTarget(stack, url, home)


# ---------------------------------------------------------------- results


def medians(samples: list[dict]) -> dict:
    keys = [k for k, _, _ in WORKLOADS if all(k in s for s in samples)]
    return {k: statistics.median(s[k] for s in samples) for k in keys}


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.3f}"
    if unit == "x":
        return f"{value:.2f}"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


Check = tuple[str, float | None, bool | None]


def checks(cells: dict, rss_peak_mb: float | None, rss_gib: int) -> list[Check]:
    """(what, measured, passed) of each target of the issue; None when not measured."""

    def get(target: str, backend: str, key: str) -> float | None:
        return cells.get((target, backend), {}).get(key)

    def at_least(value: float | None, floor: float) -> bool | None:
        return None if value is None else value >= floor

    rows = []
    for key, label, floor in [
        ("write_mbs", "file:// write >= 150 MB/s", 150),
        ("read_mbs", "file:// read >= 400 MB/s", 400),
        ("creates_s", "file:// creates >= 1,000/s", 1000),
        ("stats_s", "file:// stats >= 20,000/s", 20000),
    ]:
        value = get("objfs", "file", key)
        rows.append((label, value, at_least(value, floor)))
    value = get("objfs", "swift", "creates_s")
    rows.append(("Swift creates >= 500/s", value, at_least(value, 500)))
    times = ratio(
        get("objfs", "swift", "creates_stored_s"), get("rclone", "swift", "creates_stored_s")
    )
    rows.append(("Swift creates >= 5x rclone, stored", times, at_least(times, 5)))
    cached = ratio(value, get("rclone", "swift", "creates_s"))
    rows.append(("(objfs stored / rclone cached only)", cached, None))
    passed = None if rss_peak_mb is None else rss_peak_mb < 500
    rows.append((f"iclient RSS < 500 MB writing {rss_gib} GiB", rss_peak_mb, passed))
    return rows


def print_table(results: dict, targets: list[str], backends: list[str]) -> None:
    cells = {(m["target"], m["backend"]): m["median"] for m in results["medians"]}
    print(f"\nmedians of {results['config']['runs']} runs; {results['config']['size_mib']} MiB "
          f"file, {results['config']['files']} files of 4 KiB; cold read: "
          f"{results['config']['cold']}; CPUs {results['config']['cpus']}")  # fmt: skip
    header = f"{'backend':<8} {'workload':<15} {'unit':<5}"
    for t in targets:
        header += f" {t:>10}"
    if "objfs" in targets:
        header += f" {'objfs/local':>11}" if "local" in targets else ""
        header += f" {'objfs/rclone':>12}" if "rclone" in targets else ""
    print(header)
    for backend in backends:
        for key, label, unit in WORKLOADS:
            values = {
                t: cells.get((t, DISK if t == "local" else backend), {}).get(key) for t in targets
            }
            if all(v is None for v in values.values()):
                continue
            line = f"{backend:<8} {label:<15} {unit:<5}"
            for t in targets:
                line += f" {fmt(values[t], unit):>10}"
            if "objfs" in targets:
                if "local" in targets:
                    line += f" {fmt(ratio(values['objfs'], values['local']), 'x'):>11}"
                if "rclone" in targets:
                    line += f" {fmt(ratio(values['objfs'], values['rclone']), 'x'):>12}"
            print(line)
    rss = results.get("rss")
    if rss:
        m = rss["median"]
        print(f"\nobjfs iclient writing {results['config']['rss_gib']} GiB on file://: peak RSS "
              f"{m['peak_rss_mb']:.0f} MB (max of runs {rss['max_peak_rss_mb']:.0f}), "
              f"VmHWM {m['vmhwm_mb']:.0f} MB, {m['write_mbs']:.0f} MB/s")  # fmt: skip
    print("\ntargets of the issue (objfs):")
    for row in results["checks"]:
        label, value, passed = row["target"], row["value"], row["passed"]
        mark = {True: "PASS", False: "FAIL", None: "info" if value is not None else "n/a "}[passed]
        shown = "not measured" if value is None else f"{value:,.2f}" if value < 100 else (
            f"{value:,.0f}")  # fmt: skip
        print(f"  [{mark}] {label:<36} {shown}")


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--runs", type=int, default=3, help="runs per cell; the median counts")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--size-mib", type=int, default=1024, help="MiB of the big file")
    parser.add_argument("--files", type=int, default=10_000, help="4 KiB files created")
    parser.add_argument("--rss-gib", type=int, default=5, help="objfs RSS test; 0 skips it")
    parser.add_argument("--cold", choices=("remount", "drop"), default="remount",
                        help="before the read: remount FUSE targets and drop caches, "
                             "or only drop caches")  # fmt: skip
    parser.add_argument("--workdir", default=None, help="where the temp dir goes (/tmp)")
    parser.add_argument("--cpus", default=None, help="pin everything to these CPUs, e.g. 0")
    args = parser.parse_args()
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    targets = [t for t in args.targets.split(",") if t]
    backends = [b for b in BACKENDS if b in args.backends.split(",")]
    unknown = [b for b in args.backends.split(",") if b and b not in BACKENDS]

    say = progress(args.json)
    try:
        check_available(targets, backends + unknown)
        if args.runs < 1 or args.size_mib < 1 or args.files < 1 or args.rss_gib < 0:
            raise Unavailable("--runs, --size-mib and --files must be >= 1, --rss-gib >= 0")
    except Unavailable as e:
        sys.exit(f"{PROG}: {e}")
    measured(PROG, lambda: measure(args, targets, backends, say), args.json,
             lambda results: print_table(results, targets, backends))  # fmt: skip


def measure(args: argparse.Namespace, targets: list[str], backends: list[str], say) -> dict:
    results: dict = {
        "config": {
            "runs": args.runs,
            "targets": targets,
            "backends": backends,
            "size_mib": args.size_mib,
            "files": args.files,
            "file_bytes": SMALL,
            "rss_gib": args.rss_gib,
            "cold": args.cold,
            "cpus": sorted(os.sched_getaffinity(0)),
        },
        "runs": [],
        "medians": [],
    }
    # SIGTERM unwinds like ^C, so that the cleanup below runs.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="bench-mount-", dir=args.workdir))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        swift = None
        if "swift" in backends and set(targets) - {"local"}:
            say("starting the Swift all-in-one")
            swift = start_swift(stack, workdir)
        cells: list[tuple[str, str]] = []
        if "local" in targets:
            cells.append(("local", DISK))
        cells += [(t, b) for b in backends for t in targets if t != "local"]
        for target, backend in cells:
            with ExitStack() as inner:
                place = open_target(inner, target, backend, workdir, swift)
                samples = []
                for run in range(args.runs):
                    say(f"{target} {backend}: run {run + 1} of {args.runs}")
                    figures = one_run(place, run, args)
                    samples.append(figures)
                    results["runs"].append(
                        {"target": target, "backend": backend, "run": run, **figures}
                    )
            results["medians"].append(
                {"target": target, "backend": backend, "median": medians(samples)}
            )
        rss = None
        if "objfs" in targets and args.rss_gib > 0:
            samples = []
            for run in range(args.runs):
                say(f"objfs RSS writing {args.rss_gib} GiB: run {run + 1} of {args.runs}")
                home = Path(tempfile.mkdtemp(prefix="objfs-rss-", dir=workdir))
                samples.append(rss_run(home, args.rss_gib))
                shutil.rmtree(home, ignore_errors=True)
            rss = {
                "runs": samples,
                "median": {k: statistics.median(s[k] for s in samples) for k in samples[0]},
                "max_peak_rss_mb": max(s["peak_rss_mb"] for s in samples),
            }
            results["rss"] = rss
    by_cell = {(m["target"], m["backend"]): m["median"] for m in results["medians"]}
    results["ratios"] = {
        backend: {
            other: {
                key: ratio(
                    by_cell.get(("objfs", backend), {}).get(key),
                    by_cell.get((other, DISK if other == "local" else backend), {}).get(key),
                )
                for key, _, _ in WORKLOADS
            }
            for other in ("local", "rclone")
        }
        for backend in backends
        if "objfs" in targets
    }
    results["checks"] = [
        {"target": label, "value": value, "passed": passed}
        for label, value, passed in checks(
            by_cell, rss["max_peak_rss_mb"] if rss else None, args.rss_gib
        )
    ]
    return results


if __name__ == "__main__":
    main()
