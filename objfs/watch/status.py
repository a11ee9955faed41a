"""The watcher's status: what `objfs watch --status` prints and the HTTP page serves.

/          HTML: counts, and every failing path with its last error
/stats     JSON: the same
/config    JSON: the watch's settings (no credentials)
/metrics   Prometheus text, metrics named objfs_watch_*
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from starlette.applications import Starlette
from starlette.responses import Response

from objfs.status import heading, html_page, paragraph, status_app, table
from objfs.watch.state import Failure, WatchState


def failures_json(failures: list[Failure]) -> list[dict]:
    return [
        {
            "path": os.fsdecode(f.path) or ".",
            "attempts": f.attempts,
            "error": f.error,
            "failing_since": f.first,
            "next_try_in": max(0.0, round(f.next_try - time.time(), 1)),
        }
        for f in failures
    ]


def state_stats(state: WatchState) -> dict:
    """What the state holds, whether or not a watcher runs."""
    (synced,) = state.db.execute("SELECT count(*) FROM synced").fetchone()
    return {"synced": synced, "failures": failures_json(state.failures())}


def describe(stats: dict) -> list[str]:
    """The lines `objfs watch --status` prints."""
    failing = stats["failures"]
    lines = [f"{stats['synced']} paths in step, {len(failing)} failing"]
    for f in failing:
        lines.append(f"  {f['path']}: {f['attempts']} attempts, next in {f['next_try_in']}s: "
                     f"{f['error']}")  # fmt: skip
    return lines


def app(state: WatchState, live: Callable[[], dict], config: dict) -> Starlette:
    def stats() -> dict:
        return {**state_stats(state), **live()}

    def dashboard() -> Response:
        current = stats()
        failing = current["failures"]
        rows = [(f["path"], f["attempts"], f["next_try_in"], f["error"]) for f in failing]
        counts = ", ".join(f"{k} {v}" for k, v in current.items() if k != "failures")
        return html_page("objfs watch", [
            heading(f"objfs watch {config['source']} -> {config['target']}"),
            paragraph(counts),
            heading("failing paths"),
            table(["path", "attempts", "next try (s)", "last error"], rows),
        ])  # fmt: skip

    def metrics() -> Iterable[Metric]:
        current = stats()
        yield GaugeMetricFamily("objfs_watch_synced", "paths in step", current["synced"])
        yield GaugeMetricFamily("objfs_watch_failing", "paths failing", len(current["failures"]))
        yield GaugeMetricFamily("objfs_watch_due", "paths waiting to sync", current["due"])
        yield CounterMetricFamily("objfs_watch_syncs", "entries put", current["syncs"])
        yield CounterMetricFamily("objfs_watch_data_bytes", "bytes uploaded", current["data_bytes"])

    return status_app("objfs watch", dashboard=dashboard, config=lambda: config, stats=stats,
                      metrics=metrics)  # fmt: skip
