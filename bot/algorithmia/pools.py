"""The connections toward the cluster: httpx's client over aiohttp's connection pool.

The bot talks to the cluster through an `httpx.AsyncClient` (its interface, its exceptions,
respx in the tests), but the requests of a digest run go out through `AiohttpTransport`:
aiohttp's pool and its compiled HTTP parser take about half the CPU per request of httpcore's
(pure Python h11, anyio, a pool that scans every connection at each step, which grows with the
square of the connections kept). On a 2-core machine that is what decides how close a digest
run comes to its fetch bound (`bench/digest_run.py` times both).

Where the environment names a proxy, `cluster_client` makes a plain httpx client instead (one
httpcore pool), which honours the proxy and `NO_PROXY` as httpx does everywhere else.

`httpx-aiohttp` offers such a transport; this one is ours because it maps aiohttp's failures to
the httpx exception a user's message depends on (httpx-aiohttp reports a refused connection or
a keep-alive connection the server dropped as a connect *timeout*), and because it reads each
answer whole (every answer the bot asks the cluster for is read whole anyway).
"""

from __future__ import annotations

import contextlib
import urllib.request
from collections.abc import Iterator
from typing import Final

import aiohttp
import httpx

KEEPALIVE_S: Final = 5.0
"""How long an idle connection is kept (httpx's default)."""

_PROXIED: Final = frozenset({"http", "https", "all"})
"""Schemes of `urllib.request.getproxies()` that send the cluster's requests to a proxy
(`no` alone, or `ftp`, do not)."""


def cluster_client(connections: int, timeout: httpx.Timeout) -> httpx.AsyncClient:
    """An HTTP client keeping up to `connections` connections to the cluster: through
    `AiohttpTransport`, or one httpcore pool when the environment names a proxy for HTTP or
    HTTPS (the variables httpx reads: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`; that client
    honours `NO_PROXY` as httpx does)."""
    if _PROXIED.intersection(urllib.request.getproxies()):
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        return ClusterClient(timeout=timeout, limits=limits, follow_redirects=True)
    return ClusterClient(
        timeout=timeout, transport=AiohttpTransport(connections), follow_redirects=True
    )


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing (so, empty, it sends nothing)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class ClusterClient(httpx.AsyncClient):
    """httpx's client without cookies. The cluster's API is authenticated by the key every
    request carries: a cookie one of its answers sets (a load balancer's) is neither needed nor
    sent back, and reading each answer for one costs httpx about 50 µs, a sixteenth of a
    request's CPU in a digest run."""

    _jar = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise TypeError("the cluster's client keeps no cookies")


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends an httpx request through aiohttp's pool of up to `connections` connections and
    answers with the whole body read. TLS is verified as httpx verifies it (its default
    context: certifi, or `SSL_CERT_FILE` / `SSL_CERT_DIR`)."""

    def __init__(self, connections: int) -> None:
        self._connections = connections
        self._tls = httpx.create_ssl_context()  # now, as httpx's own client does: not at a request
        self._session: aiohttp.ClientSession | None = None  # made in the event loop, at first use
        self.busy = 0
        """Requests sent and not yet answered, or waiting for a connection (read by tests)."""

    def _opened(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._connections,
                keepalive_timeout=KEEPALIVE_S,
                ssl=self._tls,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,  # httpx decodes, as it would its own answers
                cookie_jar=aiohttp.DummyCookieJar(),  # no cookies (`ClusterClient`)
                skip_auto_headers=("User-Agent", "Accept-Encoding"),  # httpx's are sent
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.busy += 1
        try:
            return await self._send(request)
        finally:
            self.busy -= 1

    async def _send(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        body = await request.aread()
        with _as_httpx_errors(request):
            async with self._opened().request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=body or None,
                allow_redirects=False,  # httpx follows them, as it would its own
                timeout=aiohttp.ClientTimeout(
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            ) as response:
                content = await response.read()
        extensions = {"http_version": b"HTTP/1.1"}
        if response.reason:  # as the status line sent it: not always UTF-8 (Latin-1 is allowed)
            extensions["reason_phrase"] = response.reason.encode("utf-8", "surrogateescape")
        return httpx.Response(
            response.status, headers=response.raw_headers, content=content, extensions=extensions
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


@contextlib.contextmanager
def _as_httpx_errors(request: httpx.Request) -> Iterator[None]:
    """aiohttp's failures as the httpx exceptions the client tells apart (retried or not, and
    which message the user reads)."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as error:
        raise httpx.ConnectTimeout(str(error) or "connect timeout", request=request) from error
    except TimeoutError as error:  # reading (aiohttp's `SocketTimeoutError`)
        raise httpx.ReadTimeout(str(error) or "read timeout", request=request) from error
    except aiohttp.ClientConnectorError as error:  # refused, no route, name not resolved, TLS
        raise httpx.ConnectError(str(error), request=request) from error
    except aiohttp.ClientPayloadError as error:
        raise httpx.ReadError("the answer was cut short", request=request) from error
    except aiohttp.ClientResponseError as error:  # what came back was not HTTP
        said = " ".join(error.message.split())  # aiohttp's words span lines
        raise httpx.RemoteProtocolError(f"not an HTTP answer ({said})", request=request) from error
    except aiohttp.ClientConnectionError as error:  # the server dropped or reset the connection
        raise httpx.RemoteProtocolError(str(error), request=request) from error
    except aiohttp.ClientError as error:
        raise httpx.TransportError(str(error), request=request) from error
