"""bench/load.py on a tiny tree: the JSON it prints, and nothing of it left behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "load.py"
FIGURES = {"load_files_s", "rclone_files_s", "ratio", "load_mbs", "put_mbs", "percent"}


def test_bench_load_json_shape_and_cleanup(tmp_path):
    argv = [sys.executable, BENCH, "--files", "200", "--dirs", "4", "--big-gib", "0.125"]
    argv += ["--runs", "1", "--json", "--workdir", str(tmp_path)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)

    config = results["config"]
    assert (config["files"], config["dirs"], config["entries"]) == (200, 4, 205)
    assert config["big_bytes"] == 128 << 20
    assert len(results["runs"]) == 1
    run = results["runs"][0]
    assert FIGURES <= run.keys()
    assert run["put_cell"]["size"] == 16 << 20
    assert set(results["median"]) == FIGURES
    assert all(value > 0 for value in results["median"].values())
    assert results["median"]["ratio"] == run["load_files_s"] / run["rclone_files_s"]
    assert [c["target"] for c in results["checks"]] == [
        "objfs load >= 3,000 files/s",
        "objfs load >= 10x rclone copy",
        "big tree >= 80% of best PUT MB/s",
    ]
    assert all(isinstance(c["passed"], bool) for c in results["checks"])
    assert list(tmp_path.iterdir()) == []  # its temp dir (trees, state dirs) is gone


def test_bench_load_bad_input_is_one_line():
    result = subprocess.run(
        [sys.executable, BENCH, "--files", "0"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert result.stderr.startswith("bench/load.py: ")
    assert len(result.stderr.strip().splitlines()) == 1
