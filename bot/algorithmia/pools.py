"""The connections toward the cluster, held in several small pools instead of one large one.

httpcore's pool scans every connection of the pool (twice over for the idle ones) each time
a request is queued or an answer is read: its cost per request grows with the square of its
connections. A digest run keeping 48 requests in flight spent most of its CPU there (see
`bench/digest_run.py --profile`); pools of `SHARD_CONNECTIONS` keep that cost small at any
concurrency.

Each pool is an `httpx.AsyncHTTPTransport` (an httpcore pool), not a client of its own: one
client's work per request (hooks, redirects, cookies, the response's wrapping) is done once,
by the client these pools serve. A client given a transport ignores the environment's proxies,
so where the environment names one, `cluster_client` makes a plain client instead (one pool,
the proxy honoured as everywhere else).
"""

from __future__ import annotations

import math
import urllib.request
from collections.abc import AsyncIterator, Callable
from typing import Final

import httpx

SHARD_CONNECTIONS: Final = 8
_PROXIED: Final = frozenset({"http", "https", "all"})
"""Schemes of `urllib.request.getproxies()` that send the cluster's requests to a proxy
(`no` alone, or `ftp`, do not)."""


def cluster_client(connections: int, timeout: httpx.Timeout) -> httpx.AsyncClient:
    """An HTTP client keeping up to `connections` connections to the cluster: through
    `ShardedPools`, or one pool when the environment names a proxy for HTTP or HTTPS (the
    variables httpx reads: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`; that client honours
    `NO_PROXY` as httpx does)."""
    if _PROXIED.intersection(urllib.request.getproxies()):
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        return httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=True)
    return httpx.AsyncClient(
        timeout=timeout, transport=ShardedPools(connections), follow_redirects=True
    )


class ShardedPools(httpx.AsyncBaseTransport):
    """A transport sending each request through the least busy of its pools. A pool counts a
    request as busy until its answer's body is closed (read to the end or given up)."""

    def __init__(self, connections: int) -> None:
        count = max(1, math.ceil(connections / SHARD_CONNECTIONS))
        size = math.ceil(connections / count)
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self._pools = [httpx.AsyncHTTPTransport(limits=limits) for _ in range(count)]
        self.busy = [0] * count
        """Requests each pool is serving (read by tests)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self._pools)), key=self.busy.__getitem__)
        self.busy[index] += 1
        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            self.busy[index] -= 1
            raise

        def release() -> None:
            self.busy[index] -= 1

        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Releasing(response.stream, release)
        return response

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


class _Releasing(httpx.AsyncByteStream):
    """An answer's body as its pool sent it; closing it frees its connection, once."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream, self._release = stream, release
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if not self._released:
                self._released = True
                self._release()
