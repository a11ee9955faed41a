"""The two-command promise: install steps that are idempotent, and the entry points."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_install_deps_installs_nothing_the_second_time():
    # `make test` ran it moments ago, so everything must already be there.
    result = subprocess.run(
        [ROOT / "scripts" / "install-deps"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "installing" not in result.stdout + result.stderr


@pytest.mark.parametrize("program", ["objfs", "imgr", "iclient", "ickpt"])
def test_console_scripts_answer_version(program):
    result = subprocess.run([BIN / program, "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.startswith(f"{program} ")


def test_unknown_verb_is_a_short_usage_error():
    result = subprocess.run([BIN / "objfs", "frobnicate"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "invalid choice: 'frobnicate'" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


def test_ci_runs_make_test_and_readme_opens_with_the_two_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    opening = "\n".join((ROOT / "README.md").read_text().splitlines()[:20])
    assert "make run" in opening and "make test" in opening
