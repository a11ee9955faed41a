"""objfs.status: a real hypercorn server on 127.0.0.1, and the shared response helpers."""

from __future__ import annotations

import json
import os

import httpx
import pytest
import trio
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from objfs.status import (
    Html,
    RateTracker,
    html_page,
    json_error,
    json_response,
    link,
    metrics_registry,
    metrics_response,
    paragraph,
    render,
    serve_http,
    table,
)


async def _hello(request: Request) -> Response:
    return json_response({"hello": request.query_params.get("name", "world")})


async def _fail(request: Request) -> Response:
    raise RuntimeError("the provider broke")


APP = Starlette(routes=[Route("/hello", _hello), Route("/fail", _fail)])


async def get(url: str) -> httpx.Response:
    # httpx's async client needs asyncio; its sync one runs fine in a thread.
    return await trio.to_thread.run_sync(httpx.get, url)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_serves_on_the_reported_port():
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_http, APP, "127.0.0.1", 0)
        assert port > 0
        response = await get(f"http://127.0.0.1:{port}/hello?name=objfs")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"hello": "objfs"}
        assert (await get(f"http://127.0.0.1:{port}/nowhere")).status_code == 404
        # A failing handler answers 500 and leaves the server (and the daemon) running.
        assert (await get(f"http://127.0.0.1:{port}/fail")).status_code == 500
        assert (await get(f"http://127.0.0.1:{port}/hello")).status_code == 200
        nursery.cancel_scope.cancel()


async def test_cancel_drops_connections_and_closes_the_port():
    before = open_fds()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_http, APP, "127.0.0.1", 0)
            # A kept-alive connection must not hold the shutdown up.
            client = await trio.open_tcp_stream("127.0.0.1", port)
            await client.send_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while b"world" not in answer:
                answer += await client.receive_some()
            nursery.cancel_scope.cancel()
        assert await client.receive_some() == b""  # the server closed it
        await client.aclose()
    # At most as many: objects of earlier tests may be finalised (their fds closed) meanwhile.
    assert open_fds() <= before
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", port)


async def test_address_in_use_is_a_plain_oserror():
    with trio.socket.socket() as taken:
        await taken.bind(("127.0.0.1", 0))
        taken.listen()
        before = open_fds()
        with pytest.raises(OSError):
            await serve_http(APP, "127.0.0.1", taken.getsockname()[1])
        assert open_fds() <= before


def test_json_helpers():
    response = json_response({"b": 1, "a": [1, 2]}, status_code=201)
    assert response.status_code == 201
    assert response.media_type == "application/json"
    assert json.loads(response.body) == {"a": [1, 2], "b": 1}
    error = json_error(404, "no such thing")
    assert error.status_code == 404
    assert json.loads(error.body) == {"error": "no such thing"}


def test_metrics_are_read_at_each_scrape_from_a_private_registry():
    value = [1.0]
    registry = metrics_registry(lambda: [GaugeMetricFamily("test_value", "A value", value[0])])
    assert REGISTRY.get_sample_value("test_value") is None
    first = metrics_response(registry)
    value[0] = 7.0
    second = metrics_response(registry)
    assert first.media_type.startswith("text/plain")

    def sample(response: Response) -> float:
        (family,) = text_string_to_metric_families(response.body.decode())
        return family.samples[0].value

    assert (sample(first), sample(second)) == (1.0, 7.0)


def test_html_escapes_everything_but_html():
    assert render("<b>&</b>") == "&lt;b&gt;&amp;&lt;/b&gt;"
    assert render(Html("<b>x</b>")) == "<b>x</b>"
    assert render(None) == "-"
    assert link("<x>", "/a?b=1&c=2") == '<a href="/a?b=1&amp;c=2">&lt;x&gt;</a>'
    assert paragraph("a<", link("b", "/b")) == '<p>a&lt; <a href="/b">b</a></p>'
    rows = table(["h<"], [["<td>"], [3]])
    assert "<th>h&lt;</th>" in rows and "<td>&lt;td&gt;</td>" in rows and "<td>3</td>" in rows
    assert table(["h"], []) == "<p>none</p>"
    page = html_page("t<", [rows]).body.decode()
    assert "<title>t&lt;</title>" in page and "<meta http-equiv=refresh" in page
    assert "<td>&lt;td&gt;</td>" in page


def test_rates_over_the_last_minute():
    tracker = RateTracker(window=60.0, resolution=1.0)
    assert tracker.rates({"Put": 0}, now=100.0) == {}  # nothing to compare with yet
    assert tracker.rates({"Put": 10}, now=110.0) == {"Put": 1.0}
    # A method first seen later counts from zero at the base sample.
    assert tracker.rates({"Put": 30, "Get": 5}, now=150.0) == {"Put": 0.6, "Get": 0.1}
    # 160 s: the 100 s sample is a full window old and is the base; at 175 s the
    # 110 s sample is, and the 100 s one is dropped.
    assert tracker.rates({"Put": 60, "Get": 5}, now=160.0) == {"Put": 1.0, "Get": 5 / 60}
    assert tracker.rates({"Put": 125, "Get": 5}, now=175.0) == {"Put": 115 / 65, "Get": 5 / 65}


def test_rates_keep_one_sample_per_resolution():
    tracker = RateTracker(window=60.0, resolution=1.0)
    tracker.rates({"Put": 0}, now=0.0)
    for step in range(1, 1000):
        tracker.rates({"Put": step}, now=step / 1000)
    # Polled a thousand times in a second: still measured from the first sample.
    assert tracker.rates({"Put": 1000}, now=1.0) == {"Put": 1000.0}
    assert tracker.rates({"Put": 1000}, now=2.0) == {"Put": 500.0}
    assert len(tracker._samples) == 3
