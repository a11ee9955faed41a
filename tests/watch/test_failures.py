"""`objfs watch` when things fail: an object store failing 30% of requests still converges;
an unreadable local file is named (--status, /stats) and retried once it is readable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests import daemons
from tests.commands.stacks import Leftovers
from tests.watch.watching import DEADLINE, serve, start_watch, watch

ARGS = ["--settle", "0.2", "--retry-max", "1"]


def test_a_store_failing_30_percent_still_converges(tmp_path, leftovers: Leftovers):
    served = serve(leftovers, tmp_path)
    local, state = tmp_path / "local", tmp_path / "wstate"
    for i in range(120):
        folder = local / f"d{i % 6}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}").write_bytes(os.urandom(i * 97))
    (local / "large").write_bytes(os.urandom(5 << 20))
    faulty = f"{served.url}?fault_rate=0.3&fault_seed=7:{served.path}"
    watcher = watch(leftovers, local, faulty, state, "--delete", *ARGS)
    watcher.in_step(local, served.mirror)
    shutil.rmtree(local / "d1")
    os.rename(local / "d2", local / "d2-renamed")
    (local / "large").write_bytes(os.urandom(3 << 20))
    watcher.in_step(local, served.mirror)
    watcher.stop()
    served.stop()
    stored = served.verify_stored(local)
    assert stored.returncode == 0, stored.stdout + stored.stderr


# Root reads any file: without these capabilities a mode of 000 keeps root out as well.
NO_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]


def status_without_dac(state: Path, *extra: str) -> subprocess.CompletedProcess:
    argv = [*NO_DAC, daemons.command("objfs"), "watch", "--status", "--state", str(state), *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=DEADLINE)


def test_an_unreadable_file_is_named_and_retried(tmp_path, leftovers: Leftovers):
    served = serve(leftovers, tmp_path)
    local, state = tmp_path / "local", tmp_path / "wstate"
    local.mkdir()
    (local / "fine").write_bytes(b"readable\n")
    (local / "secret").write_bytes(b"unreadable for a while\n")
    os.chmod(local / "secret", 0o000)
    argv = [*NO_DAC, daemons.command("objfs"), "watch", str(local), served.target,
            "--state", str(state), "--http-port", "0", *ARGS]  # fmt: skip
    watcher = start_watch(leftovers, argv)

    def named() -> bool:
        failing = watcher.stats()["failures"]
        return [f["path"] for f in failing] == ["secret"] and "Permission" in failing[0]["error"]

    watcher.wait("the unreadable file named", named)
    assert watcher.quiet() is False  # failing
    assert (served.mirror / "fine").read_bytes() == b"readable\n"
    status = status_without_dac(state)
    assert status.returncode == 1, status.stderr
    assert "1 failing" in status.stdout and "secret" in status.stdout, status.stdout
    assert "PermissionError" in status.stdout, status.stdout

    os.chmod(local / "secret", 0o644)
    watcher.in_step(local, served.mirror)
    status = status_without_dac(state, "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["failures"] == []
    watcher.stop()
