"""What the daemons' HTTP status servers share (imgr :15346, iclient :15347).

`serve_http` runs an ASGI app with hypercorn inside the caller's trio nursery;
the rest builds the answers: JSON for scripts, Prometheus text read at scrape
time, plain escaped HTML tables for people, and RPC call rates computed from
the counters the daemon already keeps.
"""

from __future__ import annotations

import html
import json
import logging
import re
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import trio
from hypercorn.config import Config, Sockets
from hypercorn.trio import serve
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from objfs.version import VERSION

log = logging.getLogger(__name__)

# Often enough to watch a checkpoint or a gc go by, seldom enough to cost nothing.
_REFRESH_SECONDS = 5


class _BoundConfig(Config):
    """A hypercorn Config that serves an already bound socket.

    Binding ourselves reports the real port when asked for port 0, raises a
    plain OSError (not a group) when the address is taken, and keeps the socket
    ours to close however hypercorn exits; an fd:// bind would make two socket
    objects own one descriptor.
    """

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock

    def create_sockets(self) -> Sockets:
        return Sockets(secure_sockets=[], insecure_sockets=[self._sock], quic_sockets=[])


async def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = (
        await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        # A restarted daemon must get its port back while old connections linger in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def serve_http(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on host:port until cancelled; port 0 picks a free port.

    task_status.started() gets the port actually bound. On cancellation every
    connection is dropped and the listening socket closed before this returns.
    """
    with await _bind(host, port) as sock:
        bound = sock.getsockname()[1]
        config = _BoundConfig(sock)
        config.errorlog = log  # hypercorn logs where the daemon logs, not to stderr
        async with trio.open_nursery() as nursery:
            await nursery.start(serve, app, config)
            task_status.started(bound)


def json_response(data: object, status_code: int = 200) -> Response:
    """`data` as indented JSON, readable with curl as well as by scripts."""
    body = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return Response(body, status_code=status_code, media_type="application/json")


def json_error(status_code: int, message: str) -> Response:
    """An error as JSON: {"error": message}."""
    return json_response({"error": message}, status_code)


class CallbackCollector:
    """A prometheus_client collector that asks `read` for the metrics at each scrape.

    Values are read from the daemon's own state when scraped, so nothing has to
    keep prometheus metric objects up to date in the background.
    """

    def __init__(self, read: Callable[[], Iterable[Metric]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        return self._read()


def metrics_registry(read: Callable[[], Iterable[Metric]]) -> CollectorRegistry:
    """A private registry (never the global one) whose only collector is `read`."""
    registry = CollectorRegistry()
    registry.register(CallbackCollector(read))
    return registry


def metrics_response(registry: CollectorRegistry) -> Response:
    """The registry in the Prometheus text format, collected now."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class Html(str):
    """Markup that is already safe; any other value is escaped when rendered."""


def render(value: object) -> Html:
    """`value` as HTML: Html as is, None as a dash, anything else escaped."""
    if isinstance(value, Html):
        return value
    return Html("-" if value is None else html.escape(str(value)))


def link(text: object, href: str) -> Html:
    return Html(f'<a href="{html.escape(href)}">{render(text)}</a>')


def paragraph(*parts: object) -> Html:
    """A paragraph of the rendered parts, separated by spaces."""
    return Html("<p>" + " ".join(render(part) for part in parts) + "</p>")


def heading(text: object) -> Html:
    return Html(f"<h2>{render(text)}</h2>")


def table(headers: Sequence[object], rows: Iterable[Sequence[object]]) -> Html:
    """A plain HTML table; an empty one says so instead of showing bare headers."""
    body = "".join(
        "<tr>" + "".join(f"<td>{render(cell)}</td>" for cell in row) + "</tr>\n" for row in rows
    )
    if not body:
        return Html("<p>none</p>")
    head = "".join(f"<th>{render(header)}</th>" for header in headers)
    return Html(f"<table border=1 cellpadding=4>\n<tr>{head}</tr>\n{body}</table>")


def html_page(title: str, parts: Iterable[object]) -> Response:
    """A whole page that reloads itself every few seconds; `parts` are rendered in order."""
    body = "\n".join(render(part) for part in parts)
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset=utf-8>"
        f"<meta http-equiv=refresh content={_REFRESH_SECONDS}>"
        f"<title>{render(title)}</title></head>\n"
        f"<body><h1>{render(title)}</h1>\n{body}\n</body></html>\n"
    )
    return HTMLResponse(page)


@dataclass(frozen=True)
class _Sample:
    at: float
    counters: dict[str, int]


class RateTracker:
    """Calls per second per method over about the last `window` seconds.

    Each request hands in the current (ever-growing) per-method counters; the
    rate is the growth since the newest kept sample at least `window` old (or
    the oldest kept). Samples closer than `resolution` are not kept, so memory
    is bounded however often the page is polled, and no task has to tick.
    """

    def __init__(self, window: float = 60.0, resolution: float = 1.0) -> None:
        self._window = window
        self._resolution = resolution
        self._samples: deque[_Sample] = deque()

    def rates(self, counters: Mapping[str, int], now: float | None = None) -> dict[str, float]:
        """Each method's rate; empty on the first call, which has nothing to compare with."""
        now = time.monotonic() if now is None else now
        if not self._samples or now - self._samples[-1].at >= self._resolution:
            self._samples.append(_Sample(now, dict(counters)))
        while len(self._samples) > 1 and self._samples[1].at <= now - self._window:
            self._samples.popleft()
        base = self._samples[0]
        elapsed = now - base.at
        if elapsed <= 0:
            return {}
        # A method first called after the base sample had made 0 calls then.
        return {
            name: (count - base.counters.get(name, 0)) / elapsed for name, count in counters.items()
        }


_INODE_NUMBER = re.compile(r"[0-9]+")  # ASCII digits only: int() would also take " +5" or "٥"


def inode_number(text: str) -> int | None:
    """An inode number from a URL path segment, or None if it is not one (>= 1)."""
    if not _INODE_NUMBER.fullmatch(text) or int(text) < 1:
        return None
    return int(text)


def status_app(
    name: str,
    *,
    dashboard: Callable[[], Response],
    config: Callable[[], object],
    stats: Callable[[], object],
    metrics: Callable[[], Iterable[Metric]],
    routes: Sequence[Route] = (),
) -> Starlette:
    """A daemon's status app: /, /config, /stats, /version, /metrics, and its own `routes`.

    Every error is JSON, starlette's own 404 and 405 included, so scripts
    always get {"error": ...}.
    """
    registry = metrics_registry(metrics)

    def answer(read: Callable[[], object]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return json_response(read())

        return endpoint

    async def page(request: Request) -> Response:
        return dashboard()

    async def scrape(request: Request) -> Response:
        return metrics_response(registry)

    common = [
        Route("/", page),
        Route("/config", answer(config)),
        Route("/stats", answer(stats)),
        Route("/version", answer(lambda: {"name": name, "version": VERSION})),
        Route("/metrics", scrape),
    ]
    return Starlette(routes=[*common, *routes], exception_handlers={HTTPException: _http_error})


async def _http_error(request: Request, error: HTTPException) -> Response:
    return json_error(error.status_code, error.detail)
