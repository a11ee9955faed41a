"""The imgr tests' deployment: a real ickpt and imgr daemons (see tests.deployment)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deployment import IMGR_BACKENDS, SECRET, Deployment, deployed

__all__ = ["IMGR_BACKENDS", "SECRET", "Deployment", "deployment"]


@pytest.fixture
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    with deployed(request, tmp_path) as deployment:
        yield deployment
