"""TLS with certificates from trustme: a trusting client works, a distrusting one fails clearly."""

from __future__ import annotations

import ssl

import pytest
import trio
import trustme

from objfs.rpc import ReconnectPolicy, RpcClient, RpcUnavailable
from tests.rpc.helpers import serving

DEADLINE = 10.0


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def server_context(ca):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


async def echo(session, args):
    return args


async def test_calls_over_tls(ca, server_context):
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    with trio.fail_after(DEADLINE):
        async with serving({"echo": echo}, ssl_context=server_context) as (_server, port):
            async with RpcClient.connect("127.0.0.1", port, ssl_context=trusting) as client:
                assert await client.call("echo", {"x": b"\x00" * 10}) == {"x": b"\x00" * 10}
                async with trio.open_nursery() as nursery:
                    for n in range(20):
                        nursery.start_soon(client.call, "echo", n)


async def test_untrusted_certificate_fails_clearly(server_context):
    distrusting = ssl.create_default_context()  # system CAs only
    patient = ReconnectPolicy(attempts=100, base_delay=0.5)  # would take long if retried
    with trio.fail_after(DEADLINE):
        async with serving({"echo": echo}, ssl_context=server_context) as (_server, port):
            with pytest.raises(RpcUnavailable, match="certificate verification failed"):
                async with RpcClient.connect(
                    "127.0.0.1", port, ssl_context=distrusting, policy=patient
                ):
                    pass  # pragma: no cover
