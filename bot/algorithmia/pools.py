"""The connections toward the cluster, held in several small pools instead of one large one.

httpcore's pool scans every connection of the pool (twice over for the idle ones) each time
a request is queued or an answer is read: its cost per request grows with the square of its
connections. A digest run keeping 48 requests in flight spent most of its CPU there (see
`bench/digest_run.py --profile`); pools of `SHARD_CONNECTIONS` keep that cost small at any
concurrency.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from typing import Final

import httpx

SHARD_CONNECTIONS: Final = 8


class ShardedPools(httpx.AsyncBaseTransport):
    """A transport sending each request through the least busy of its pools; each pool is
    an `httpx.AsyncClient` of its own, so the environment (proxies, certificates) applies as
    to one client."""

    def __init__(self, connections: int, timeout: httpx.Timeout) -> None:
        count = max(1, math.ceil(connections / SHARD_CONNECTIONS))
        size = math.ceil(connections / count)
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self._pools = [httpx.AsyncClient(timeout=timeout, limits=limits) for _ in range(count)]
        self._busy = [0] * count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self._pools)), key=self._busy.__getitem__)
        self._busy[index] += 1
        try:
            response = await self._pools[index].send(request, stream=True)
        except BaseException:
            self._busy[index] -= 1
            raise

        def release() -> None:
            self._busy[index] -= 1

        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Releasing(response, release),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


class _Releasing(httpx.AsyncByteStream):
    """An answer's body as its pool sent it; closing it frees its connection, once."""

    def __init__(self, response: httpx.Response, release: Callable[[], None]) -> None:
        self._response, self._release = response, release
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.aiter_raw():
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._response.aclose()
        finally:
            if not self._released:
                self._released = True
                self._release()
