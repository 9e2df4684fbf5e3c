"""The cluster's connections through the client the bot builds (`cluster_client`): bounded,
every connection given back, failures told as the user should read them, proxies honoured.
Against the sample cluster and misbehaving servers on loopback, not mocks."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from bot.algorithmia.client import AlgorithmiaClient, default_timeout
from bot.algorithmia.exceptions import Unavailable
from bot.algorithmia.pools import AiohttpTransport, cluster_client
from bot.domain.algorithm_ref import OwnerName
from bot.testing.loopback import free_port
from bot.testing.sample_cluster import SampleCluster
from bot.testing.tcp_proxy import TcpProxy

KEY = "simPOOLSTESTKEY0000000000000"
TAGGER = OwnerName("acme", "image_tagger")
ERRORS = "/v1/algorithms/acme/image_tagger/errors"
SHORT = httpx.Timeout(connect=1.0, read=0.3, write=1.0, pool=1.0)
"""A pool timeout of 1 s: a connection never given back fails the test, not hangs it."""


@pytest.fixture
async def cluster() -> AsyncIterator[SampleCluster]:
    async with SampleCluster(authorization=f"Simple {KEY}") as running:
        running.load_sample()
        yield running


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)


def transport_of(http: httpx.AsyncClient) -> AiohttpTransport:
    transport = http._transport  # the client the bot builds: what carries its requests
    assert isinstance(transport, AiohttpTransport)
    return transport


async def test_no_more_requests_at_once_than_connections_and_every_one_comes_back(
    cluster: SampleCluster,
) -> None:
    cluster.latency_s = 3.0  # no answer comes before every connection has sent its request
    async with cluster_client(24, default_timeout()) as http:
        transport = transport_of(http)
        client = AlgorithmiaClient(http, cluster.base_url, f"Simple {KEY}")
        asking = [asyncio.create_task(client.list_errors(TAGGER)) for _ in range(40)]
        try:
            for _ in range(250):  # up to 2.5 s, however loaded the machine: within the latency
                if len(cluster.requests) >= 24:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            assert len(cluster.requests) == 24  # the other 16 wait for a connection
            assert transport.busy == 40
        finally:
            batches = await asyncio.gather(*asking)
        assert [len(batch.records) for batch in batches] == [80] * 40
        assert len(cluster.requests) == 40
        assert transport.busy == 0


async def test_answers_refused_give_their_connection_back(cluster: SampleCluster) -> None:
    async with cluster_client(4, SHORT) as http:
        cluster.down = True  # 503 each time: retried, then refused
        client = AlgorithmiaClient(http, cluster.base_url, f"Simple {KEY}", backoff_s=0)
        for _ in range(3):
            with pytest.raises(Unavailable, match="cluster answered 503"):
                await client.list_errors(TAGGER)
        cluster.down = False
        for _ in range(3):  # 12 requests through 4 connections, each waiting at most 1 s
            batches = await asyncio.gather(*(client.list_errors(TAGGER) for _ in range(4)))
            assert [len(batch.records) for batch in batches] == [80] * 4
        assert transport_of(http).busy == 0


async def _serve(answer: Callable[[asyncio.StreamWriter], Awaitable[None]]) -> asyncio.Server:
    """A server on loopback reading each request's head and answering with `answer`."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            await answer(writer)
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _failure(server: asyncio.Server | None, port: int) -> str:
    """What the user reads when the cluster at `port` fails this way (retried, then given up)."""
    base = f"http://127.0.0.1:{port}"
    async with cluster_client(4, SHORT) as http:
        client = AlgorithmiaClient(http, base, f"Simple {KEY}", backoff_s=0)
        with pytest.raises(Unavailable) as refused:
            await client.list_errors(TAGGER)
        assert transport_of(http).busy == 0
    if server is not None:
        server.close()
    return refused.value.message.replace(base, "BASE")


async def test_failures_reach_the_user_as_what_happened() -> None:
    port = free_port()  # nothing listens there
    assert (await _failure(None, port)).startswith("could not connect to BASE: ")

    async def cut_short(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n[{")
        await writer.drain()

    server = await _serve(cut_short)
    assert await _failure(server, server.sockets[0].getsockname()[1]) == (
        f"connection lost waiting for BASE{ERRORS}: the answer was cut short (tried 3 times)"
    )

    async def not_http(writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()

    server = await _serve(not_http)
    assert (await _failure(server, server.sockets[0].getsockname()[1])).startswith(
        f"connection lost waiting for BASE{ERRORS}: not an HTTP answer (Bad status line"
    )

    async def silent(writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    server = await _serve(silent)
    assert await _failure(server, server.sockets[0].getsockname()[1]) == (
        f"timed out after 0.3 s waiting for BASE{ERRORS} (tried 3 times)"
    )


async def test_a_kept_connection_the_cluster_dropped_is_replaced(cluster: SampleCluster) -> None:
    host, _, port = cluster.base_url.removeprefix("http://").partition(":")
    async with TcpProxy(host, int(port.split("/")[0])) as proxy:
        await proxy.start()
        async with cluster_client(2, SHORT) as http:
            client = AlgorithmiaClient(
                http, f"http://127.0.0.1:{proxy.port}", f"Simple {KEY}", backoff_s=0
            )
            assert len((await client.list_errors(TAGGER)).records) == 80
            await proxy.stop()  # cuts the connection kept for the next request
            await proxy.start()
            assert len((await client.list_errors(TAGGER)).records) == 80


async def test_a_proxy_in_the_environment_carries_the_requests(
    cluster: SampleCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, _, port = cluster.base_url.removeprefix("http://").partition(":")
    async with TcpProxy(host, int(port.split("/")[0])) as proxy:
        await proxy.start()
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        async with cluster_client(8, default_timeout()) as http:
            # A name nothing resolves: only the proxy can reach it.
            client = AlgorithmiaClient(http, "http://cluster.invalid", f"Simple {KEY}")
            assert len((await client.list_errors(TAGGER)).records) == 80


async def test_no_proxy_alone_keeps_the_fast_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    monkeypatch.setenv("FTP_PROXY", "http://ftp-proxy.invalid:3128")
    async with cluster_client(8, default_timeout()) as http:
        assert transport_of(http).busy == 0


async def test_a_status_line_in_latin_1_is_read_as_any_other() -> None:
    """HTTP allows a reason phrase in Latin-1 (a German proxy's `Dienst nicht verfügbar`): the
    answer is told as the plain httpx client tells it, retried when it is a 503."""

    async def latin_1(writer: asyncio.StreamWriter) -> None:
        body = b'{"error": {"message": "upstream down"}}'
        head = f"Content-Length: {len(body)}\r\nContent-Type: application/json\r\n\r\n"
        writer.write(b"HTTP/1.1 503 Dienst nicht verf\xfcgbar\r\n" + head.encode() + body)
        await writer.drain()

    server = await _serve(latin_1)
    assert await _failure(server, server.sockets[0].getsockname()[1]) == (
        "cluster answered 503: upstream down (tried 3 times)"
    )


async def test_a_cookie_the_cluster_sets_is_never_sent_back() -> None:
    """The key authenticates every request: a load balancer's cookie is not kept (nor is it
    read, which cost a sixteenth of a request's CPU), so no request carries one."""
    heads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                b"Set-Cookie: AWSALB=sticky; Path=/\r\nConnection: close\r\n\r\n[]"
            )
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with cluster_client(2, SHORT) as http:
        client = AlgorithmiaClient(http, base, f"Simple {KEY}")
        for _ in range(2):
            assert (await client.list_errors(TAGGER)).request_ids == frozenset()
    server.close()
    assert len(heads) == 2
    assert all(b"cookie:" not in head.lower() for head in heads)
