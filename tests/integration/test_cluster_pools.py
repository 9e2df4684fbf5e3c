"""The cluster's connections: several small pools, every connection given back, proxies
honoured. Against the sample cluster on loopback, through the client the bot uses."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.algorithmia.client import AlgorithmiaClient, default_timeout
from bot.algorithmia.exceptions import Unavailable
from bot.algorithmia.pools import SHARD_CONNECTIONS, ShardedPools, cluster_client
from bot.domain.algorithm_ref import OwnerName
from bot.testing.sample_cluster import SampleCluster
from bot.testing.tcp_proxy import TcpProxy

KEY = "simPOOLSTESTKEY0000000000000"
TAGGER = OwnerName("acme", "image_tagger")


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


def pools_of(http: httpx.AsyncClient) -> ShardedPools:
    transport = http._transport  # the client the bot builds: what carries its requests
    assert isinstance(transport, ShardedPools)
    return transport


async def test_requests_at_once_spread_over_the_pools_and_all_connections_come_back(
    cluster: SampleCluster,
) -> None:
    cluster.latency_s = 3.0  # no answer comes before every connection has sent its request
    async with cluster_client(3 * SHARD_CONNECTIONS, default_timeout()) as http:
        pools = pools_of(http)
        client = AlgorithmiaClient(http, cluster.base_url, f"Simple {KEY}")
        asking = [asyncio.create_task(client.list_errors(TAGGER)) for _ in range(40)]
        try:
            for _ in range(250):  # up to 2.5 s, however loaded the machine: within the latency
                if len(cluster.requests) >= 3 * SHARD_CONNECTIONS:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            assert len(cluster.requests) == 3 * SHARD_CONNECTIONS  # the other 16 wait
            assert sorted(pools.busy) == [13, 13, 14]  # spread evenly
        finally:
            batches = await asyncio.gather(*asking)
        assert [len(batch.records) for batch in batches] == [80] * 40
        assert len(cluster.requests) == 40
        assert pools.busy == [0, 0, 0]


async def test_answers_refused_or_left_unread_give_their_connection_back(
    cluster: SampleCluster,
) -> None:
    async with cluster_client(SHARD_CONNECTIONS, default_timeout()) as http:
        pools = pools_of(http)
        cluster.down = True  # 503 each time: retried, then refused
        client = AlgorithmiaClient(http, cluster.base_url, f"Simple {KEY}", backoff_s=0)
        with pytest.raises(Unavailable):
            await client.list_errors(TAGGER)
        cluster.down = False
        url = f"{cluster.base_url}/v1/algorithms/acme/image_tagger/errors"
        headers = {"Authorization": f"Simple {KEY}"}
        for _ in range(3 * SHARD_CONNECTIONS):  # more than the pool holds: each one freed
            async with http.stream("GET", url, headers=headers) as response:
                assert response.status_code == 200  # its body never read
        assert pools.busy == [0]
        assert len((await client.list_errors(TAGGER)).records) == 80


async def test_a_proxy_in_the_environment_carries_the_requests(
    cluster: SampleCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, _, port = cluster.base_url.removeprefix("http://").partition(":")
    async with TcpProxy(host, int(port.split("/")[0])) as proxy:
        await proxy.start()
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        async with cluster_client(SHARD_CONNECTIONS, default_timeout()) as http:
            # A name nothing resolves: only the proxy can reach it.
            client = AlgorithmiaClient(http, "http://cluster.invalid", f"Simple {KEY}")
            assert len((await client.list_errors(TAGGER)).records) == 80


async def test_no_proxy_alone_keeps_the_small_pools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    monkeypatch.setenv("FTP_PROXY", "http://ftp-proxy.invalid:3128")
    async with cluster_client(SHARD_CONNECTIONS, default_timeout()) as http:
        assert pools_of(http).busy == [0]
