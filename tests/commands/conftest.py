"""Every test here gets its own registry of running stacks (OBJFS_RUN_DIR)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.commands.stacks import Leftovers


@pytest.fixture(autouse=True)
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "run"
    monkeypatch.setenv("OBJFS_RUN_DIR", str(path))
    return path


@pytest.fixture
def leftovers(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Leftovers]:
    left = Leftovers(tmp_path_factory.mktemp("stderr"))
    try:
        yield left
    finally:
        left.clean()
