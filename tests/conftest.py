"""Real services for the whole suite, and the suite's own rules.

Swift, Azurite and etcd are started once per session by scripts/services and
stopped by PID however the session ends (a failure, ^C, or SIGTERM).
A skipped test fails the run under CI: every test must run there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import services

_skipped: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    # A SIGTERM (a CI time-out, a kill) unwinds like ^C, so fixtures stop their services.
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped and os.environ.get("CI") and exitstatus == 0:
        print(f"\nCI forbids skipped tests; skipped: {', '.join(_skipped)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _session_service(kind: str) -> Iterator[dict]:
    directory = tempfile.mkdtemp(prefix=f"objfs-{kind}-")
    try:
        yield services.start(kind, directory)
    finally:
        try:
            services.stop(kind, directory, purge=True)
        finally:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def swift_service() -> Iterator[dict]:
    yield from _session_service("swift")


@pytest.fixture(scope="session")
def azurite_service() -> Iterator[dict]:
    yield from _session_service("azurite")


@pytest.fixture(scope="session")
def etcd_service() -> Iterator[dict]:
    yield from _session_service("etcd")


@pytest.fixture
def dedicated_service() -> Iterator[Callable[[str], tuple[dict, Path]]]:
    """Factory for instances a test may stop and restart; all are purged afterwards."""
    # ExitStack runs every cleanup even when one of them raises, then re-raises.
    with contextlib.ExitStack() as cleanups:

        def start(kind: str) -> tuple[dict, Path]:
            directory = Path(tempfile.mkdtemp(prefix=f"objfs-{kind}-"))
            cleanups.callback(shutil.rmtree, directory, ignore_errors=True)
            cleanups.callback(services.stop, kind, directory, purge=True)
            return services.start(kind, directory), directory

        yield start
