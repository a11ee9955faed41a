"""Run scripts/services from tests: real Swift, Azurite and etcd on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "services"
START_TIMEOUT = 180.0
STOP_TIMEOUT = 60.0


def run(
    kind: str, action: str, directory: str | Path, *extra: str, timeout: float = START_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run the script; the caller checks the exit code."""
    argv = [sys.executable, str(SCRIPT), kind, action, "--dir", str(directory), "-q", *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def start(kind: str, directory: str | Path) -> dict:
    """Start (or restart) the service in directory and return its service.json contents."""
    result = run(kind, "start", directory)
    if result.returncode != 0:
        raise RuntimeError(f"starting {kind} failed ({result.returncode}):\n{result.stderr}")
    return json.loads(result.stdout)


def stop(kind: str, directory: str | Path, purge: bool = False) -> None:
    extra = ("--purge",) if purge else ()
    result = run(kind, "stop", directory, *extra, timeout=STOP_TIMEOUT)
    if result.returncode != 0:
        raise RuntimeError(f"stopping {kind} failed ({result.returncode}):\n{result.stderr}")
