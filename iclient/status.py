"""iclient's HTTP status server (127.0.0.1:15347 by default): dashboard, JSON, metrics.

`app(view)` builds the starlette app over an iclient.view.MountView;
`serve_status` serves it with objfs.status.serve_http inside the mount's
nursery. Every answer is read from the mount when asked, so nothing here keeps
state but the operation rate samples.

    /                  HTML dashboard for people (reloads itself)
    /config            JSON, the settings without the token or store credentials
    /stats             JSON, buffer, uploads, read cache, inodes, commits, ops and ops/s
    /version           JSON
    /leases            JSON, {"count", "truncated", "leases": [{inode, mode, dirty, opens}]}
    /inode/N           JSON, a held inode (400 unless N >= 1, 404 unless held here)
    /metrics           Prometheus text, metrics named objfs_iclient_*
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import trio
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from iclient.view import MountView
from objfs.status import (
    Html,
    RateTracker,
    heading,
    html_page,
    inode_number,
    json_error,
    json_response,
    link,
    paragraph,
    serve_http,
    status_app,
    table,
)
from objfs.version import VERSION

if TYPE_CHECKING:
    from iclient.mount import Mount
    from iclient.wakeups import BusyPoll

_PREFIX = "objfs_iclient_"
_JSON_PATHS = ("/config", "/stats", "/version", "/leases", "/inode/1", "/metrics")


def app(view: MountView) -> Starlette:
    """The status app over `view`."""
    tracker = RateTracker()

    def stats() -> dict:
        current = view.stats()
        return {**current, "op_rates": tracker.rates(current["ops"])}

    async def leases(request: Request) -> Response:
        return json_response(view.leases())

    async def inode(request: Request) -> Response:
        text = request.path_params["inode"]
        number = inode_number(text)
        if number is None:
            return json_error(400, f"inode must be an integer >= 1, not {text!r}")
        found = view.inode(number)
        if found is None:
            return json_error(404, f"inode {text} is not held by this mount")
        return json_response(found)

    return status_app(
        "iclient",
        dashboard=lambda: html_page(f"iclient {view.volume}", _dashboard(stats())),
        config=view.config,
        stats=stats,
        metrics=lambda: _metrics(view.stats()),
        routes=[Route("/leases", leases), Route("/inode/{inode}", inode)],
    )


async def serve_status(
    mount: Mount,
    busy_poll: BusyPoll | None,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the status pages of `mount` until cancelled; task_status gets the bound port."""
    await serve_http(app(MountView(mount, busy_poll)), host, port, task_status=task_status)


# ------------------------------------------------------------------ dashboard


def _dashboard(stats: dict) -> list[Html]:
    buffer, cache, inodes = stats["buffer"], stats["read_cache"], stats["inodes"]
    leases = inodes["leases_exclusive"] + inodes["leases_shared"]
    commits, rates = stats["commits"], stats["op_rates"]
    hit_rate = cache["hit_rate"]
    return [
        paragraph(
            f"volume {stats['volume']} ({stats['volume_id']}) at {stats['mountpoint']},",
            f"mount {stats['mount_id']}, version {VERSION}, up {stats['uptime_seconds']:.0f} s",
        ),
        paragraph("JSON:", *(link(path, path) for path in _JSON_PATHS)),
        heading("Write-back buffer"),
        table(
            ("", "now", "bound"),
            [
                (
                    "dirty in memory",
                    _size(buffer["memory_bytes"]),
                    _size(buffer["memory_limit_bytes"]),
                ),
                (
                    "dirty spilled to disk",
                    _size(buffer["spilled_bytes"]),
                    _size(buffer["disk_limit_bytes"]),
                ),
                ("uploads in flight", buffer["uploads_in_flight"], buffer["upload_slots"]),
                ("uploaded", _size(buffer["uploaded_bytes"]), None),
                ("objects uploaded", buffer["uploaded_objects"], None),
                ("upload retries", buffer["upload_retries"], None),
                ("sealed since the last commit", _size(buffer["uncommitted_bytes"]), None),
            ],
        ),
        heading("Read cache"),
        table(
            ("", "now", "bound"),
            [
                ("cached", _size(cache["bytes"]), _size(cache["limit_bytes"])),
                ("hits / misses", f"{cache['hits']} / {cache['misses']}", None),
                ("hit rate", None if hit_rate is None else f"{hit_rate:.1%}", None),
                ("fetched", _size(cache["fetched_bytes"]), None),
            ],
        ),
        heading("Inodes and leases"),
        table(
            ("held", "dirty", "exclusive leases", "shared leases", "lease calls", "head loads"),
            [
                (
                    inodes["inodes_held"],
                    inodes["inodes_dirty"],
                    inodes["leases_exclusive"],
                    inodes["leases_shared"],
                    inodes["lease_calls"],
                    inodes["head_loads"],
                )
            ],
        ),
        paragraph(link(f"{leases} leases held", "/leases")),
        heading("Commits"),
        table(
            ("commits", "inodes committed", "last commit (s)"),
            [
                (
                    commits["commits"],
                    commits["committed_inodes"],
                    f"{commits['last_commit_seconds']:.3f}",
                )
            ],
        ),
        heading("Operations"),
        table(
            ("operation", "count", "ops/s (last minute)"),
            [(op, count, _rate(rates.get(op))) for op, count in sorted(stats["ops"].items())],
        ),
        paragraph(_busy_poll(stats["busy_poll"])),
    ]


def _busy_poll(busy: dict) -> str:
    if not busy["rate"]:
        return "Busy polling is off."
    if busy["refused"]:
        return f"Busy polling is off: {busy['refused']}."
    now = "idle CPUs poll now" if busy["held"] else "idle CPUs keep the system's policy now"
    return f"Busy polling from {busy['rate']} ops/s: {now}, {busy['holds']} busy spells so far."


def _rate(rate: float | None) -> str | None:
    # No rate yet on the first look: one sample has nothing to compare with.
    return None if rate is None else f"{rate:.2f}"


def _size(nbytes: int) -> str:
    """Bytes in binary units, for people; the JSON pages give exact counts."""
    size = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{nbytes} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


# -------------------------------------------------------------------- metrics


def _metrics(stats: dict) -> Iterable[Metric]:
    buffer, cache, inodes = stats["buffer"], stats["read_cache"], stats["inodes"]

    def gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
        return GaugeMetricFamily(_PREFIX + name, help_text, value)

    def counter(name: str, help_text: str, value: float) -> CounterMetricFamily:
        return CounterMetricFamily(_PREFIX + name, help_text, value)

    yield gauge("uptime_seconds", "Seconds since the volume was mounted", stats["uptime_seconds"])
    dirty = GaugeMetricFamily(
        _PREFIX + "dirty_bytes", "Written bytes not yet in the object store", labels=["where"]
    )
    dirty.add_metric(["memory"], buffer["memory_bytes"])
    dirty.add_metric(["disk"], buffer["spilled_bytes"])
    yield dirty
    bound = GaugeMetricFamily(
        _PREFIX + "dirty_limit_bytes", "Bounds of the write-back buffer", labels=["where"]
    )
    bound.add_metric(["memory"], buffer["memory_limit_bytes"])
    bound.add_metric(["disk"], buffer["disk_limit_bytes"])
    yield bound
    yield gauge("uploads_in_flight", "Segments being uploaded", buffer["uploads_in_flight"])
    yield counter("uploaded_bytes", "Bytes uploaded", buffer["uploaded_bytes"])
    yield counter("uploaded_objects", "Objects uploaded", buffer["uploaded_objects"])
    yield counter("upload_retries", "Failed uploads retried", buffer["upload_retries"])
    yield gauge("read_cache_bytes", "Bytes in the read cache", cache["bytes"])
    yield counter("read_cache_hits", "Block reads answered from the cache", cache["hits"])
    yield counter("read_cache_misses", "Block reads fetched from the store", cache["misses"])
    yield counter("read_fetched_bytes", "Bytes fetched from the store", cache["fetched_bytes"])
    leases = GaugeMetricFamily(_PREFIX + "leases", "Leases held by mode", labels=["mode"])
    leases.add_metric(["exclusive"], inodes["leases_exclusive"])
    leases.add_metric(["shared"], inodes["leases_shared"])
    yield leases
    yield gauge("inodes_held", "Inodes held in memory", inodes["inodes_held"])
    yield gauge("inodes_dirty", "Inodes changed since the last commit", inodes["inodes_dirty"])
    yield counter("lease_calls", "Lease requests made to imgr", inodes["lease_calls"])
    yield counter("commits", "Commits made", stats["commits"]["commits"])
    yield counter("committed_inodes", "Inodes committed", stats["commits"]["committed_inodes"])
    ops = CounterMetricFamily(_PREFIX + "ops", "Filesystem operations by kind", labels=["op"])
    for op, count in sorted(stats["ops"].items()):
        ops.add_metric([op], count)
    yield ops
    busy = stats["busy_poll"]
    yield gauge("busy_poll_held", "1 while idle CPUs poll for this busy mount", int(busy["held"]))
    yield counter("busy_poll_holds", "Busy spells in which idle CPUs polled", busy["holds"])
