"""imgr's HTTP status server (127.0.0.1:15346 by default): dashboard, JSON, metrics.

`app(provider)` builds the starlette app; the daemon serves it with
objfs.status.serve_http. Every answer is read from the provider when asked, so
nothing here keeps state but the RPC rate samples.

    /                          HTML dashboard for people (reloads itself)
    /config /stats /version    JSON
    /volume                    JSON, one entry per volume
    /volume/NAME               JSON, with the mounts and gc detail (404 if unknown)
    /volume/NAME/inode/N       JSON (400 unless N >= 1, 404 if unknown)
    /leases                    JSON
    /metrics                   Prometheus text, metrics named objfs_imgr_*
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol
from urllib.parse import quote

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

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
    status_app,
    table,
)
from objfs.version import VERSION

log = logging.getLogger(__name__)

_PREFIX = "objfs_imgr_"


class StatusProvider(Protocol):
    """What the status server reads from the running imgr; see the module for the shapes."""

    def config(self) -> dict:
        """JSON-able, secrets already redacted."""

    def stats(self) -> dict:
        """{"uptime_seconds", "rpc": {method: {"calls", "errors", "seconds"}}, ...}."""

    def volumes(self) -> list[dict]:
        """One per volume: name, url, state, volume_id, mounts, leases, checkpoint,
        inodes, objects {live, garbage, deleted}, bytes {written, referenced, garbage}."""

    def volume(self, name: str) -> dict | None:
        """As in volumes(), plus "mounts_detail" and "gc"; None if unknown."""

    async def inode(self, name: str, inode: int) -> dict | None:
        """JSON-able; None if the volume or the inode is unknown."""

    def leases(self) -> list[dict]:
        """[{"volume", "inode", "mount", "mode", "waiting"}]."""


def app(provider: StatusProvider) -> Starlette:
    """The status app over `provider`."""
    tracker = RateTracker()

    def stats() -> dict:
        current = provider.stats()
        counters = {method: rpc["calls"] for method, rpc in current["rpc"].items()}
        return {**current, "rpc_rates": tracker.rates(counters)}

    async def volumes(request: Request) -> Response:
        return json_response(provider.volumes())

    async def volume(request: Request) -> Response:
        name = request.path_params["name"]
        found = provider.volume(name)
        if found is None:
            return json_error(404, f"no volume {name!r}")
        return json_response(found)

    async def inode(request: Request) -> Response:
        name, text = request.path_params["name"], request.path_params["inode"]
        number = inode_number(text)
        if number is None:
            return json_error(400, f"inode must be an integer >= 1, not {text!r}")
        found = await provider.inode(name, number)
        if found is None:
            return json_error(404, f"no inode {text} in volume {name!r}")
        return json_response(found)

    async def leases(request: Request) -> Response:
        return json_response(provider.leases())

    return status_app(
        "imgr",
        dashboard=lambda: html_page("imgr", _dashboard(provider, stats(), len(provider.leases()))),
        config=provider.config,
        stats=stats,
        metrics=lambda: _metrics(provider),
        routes=[
            Route("/volume", volumes),
            # Names may hold a "/" (sent as %2F, which the path arrives decoded from), so
            # they match as paths, the more specific inode route first.
            Route("/volume/{name:path}/inode/{inode}", inode),
            Route("/volume/{name:path}", volume),
            Route("/leases", leases),
        ],
    )


_JSON_PATHS = ("/config", "/stats", "/version", "/volume", "/leases", "/metrics")
_VOLUME_COLUMNS = (
    "name", "state", "mounts", "leases", "checkpoint", "checkpoint age (s)", "inodes",
    "live objects", "garbage objects", "written bytes", "referenced bytes", "garbage bytes",
)  # fmt: skip
_RPC_COLUMNS = ("method", "calls", "errors", "seconds", "calls/s (last minute)")


def _dashboard(provider: StatusProvider, stats: dict, lease_count: int) -> list[Html]:
    rates = stats["rpc_rates"]
    uptime = f"{stats['uptime_seconds']:.0f}"
    return [
        paragraph(f"version {VERSION}, up {uptime} s, {lease_count} leases held or waited for"),
        paragraph("JSON:", *(link(path, path) for path in _JSON_PATHS)),
        heading("Volumes"),
        table(_VOLUME_COLUMNS, (_volume_row(volume) for volume in provider.volumes())),
        heading("RPC"),
        table(
            _RPC_COLUMNS,
            (
                _rpc_row(method, rpc, rates.get(method))
                for method, rpc in sorted(stats["rpc"].items())
            ),
        ),
    ]


def _rpc_row(method: str, rpc: dict, rate: float | None) -> list[object]:
    # No rate yet on the first look: one sample has nothing to compare with.
    rate_text = None if rate is None else f"{rate:.2f}"
    return [method, rpc["calls"], rpc["errors"], f"{rpc['seconds']:.3f}", rate_text]


def _volume_row(volume: dict) -> list[object]:
    checkpoint, objects, sizes = volume["checkpoint"], volume["objects"], volume["bytes"]
    age = checkpoint["age_seconds"]
    return [
        link(volume["name"], "/volume/" + quote(volume["name"], safe="")),
        volume["state"],
        volume["mounts"],
        volume["leases"],
        checkpoint["sequence"],
        None if age is None else f"{age:.1f}",
        volume["inodes"],
        objects["live"],
        objects["garbage"],
        sizes["written"],
        sizes["referenced"],
        sizes["garbage"],
    ]


def _metrics(provider: StatusProvider) -> Iterable[Metric]:
    stats = provider.stats()
    yield GaugeMetricFamily(
        _PREFIX + "uptime_seconds", "Seconds since imgr started", stats["uptime_seconds"]
    )
    yield from _rpc_metrics(stats["rpc"])
    yield from _volume_metrics(provider.volumes())


def _rpc_metrics(rpc: dict) -> Iterable[Metric]:
    for key, help_text in (
        ("calls", "RPC calls answered"),
        ("errors", "RPC calls answered with an error"),
        ("seconds", "Seconds spent answering RPC calls"),
    ):
        family = CounterMetricFamily(_PREFIX + "rpc_" + key, help_text, labels=["method"])
        for method, counts in rpc.items():
            family.add_metric([method], counts[key])
        yield family


def _volume_metrics(volumes: list[dict]) -> Iterable[Metric]:
    def gauge(name: str, help_text: str, *labels: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(_PREFIX + name, help_text, labels=["volume", *labels])

    inodes = gauge("inodes", "Inodes in the volume")
    objects = gauge("objects", "Objects by state", "state")
    sizes = gauge("bytes", "Object bytes by state", "state")
    age = gauge("checkpoint_age_seconds", "Seconds since the last checkpoint")
    sequence = gauge("checkpoint_sequence", "Sequence number of the last checkpoint")
    mounts = gauge("mounts", "Mounts of the volume")
    leases = gauge("leases", "Leases on the volume's inodes")
    for volume in volumes:
        name, checkpoint = volume["name"], volume["checkpoint"]
        inodes.add_metric([name], volume["inodes"])
        for state in ("live", "garbage"):
            objects.add_metric([name, state], volume["objects"][state])
        for state in ("written", "referenced", "garbage"):
            sizes.add_metric([name, state], volume["bytes"][state])
        # No sample rather than a made-up age while the volume has no checkpoint yet.
        if checkpoint["age_seconds"] is not None:
            age.add_metric([name], checkpoint["age_seconds"])
        sequence.add_metric([name], checkpoint["sequence"])
        mounts.add_metric([name], volume["mounts"])
        leases.add_metric([name], volume["leases"])
    return [inodes, objects, sizes, age, sequence, mounts, leases]
