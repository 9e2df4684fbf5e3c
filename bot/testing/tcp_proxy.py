"""A TCP proxy on a fixed loopback port that a test stops and starts: a dependency (a database,
say) going away and coming back, for a process that keeps the same address all along."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self

from bot.testing.loopback import free_port

_CHUNK = 65536


class TcpProxy:
    """Relays each connection to `127.0.0.1:port` on to `target_host:target_port`.

    Stopped (and before `start`), it refuses connections and has cut every one it relayed,
    as a server that went down does; started again, it listens on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._relays: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )

    async def stop(self) -> None:
        """Refuse new connections and cut the ones open."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for relay in list(self._relays):
            relay.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _accept(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        self._writers.add(client)
        try:
            try:
                upstream_reader, upstream = await asyncio.open_connection(*self._target)
            except OSError:
                client.transport.abort()
                return
            self._writers.add(upstream)
            try:
                await asyncio.gather(_pipe(client_reader, upstream), _pipe(upstream_reader, client))
            finally:
                upstream.transport.abort()
                self._writers.discard(upstream)
        finally:
            client.transport.abort()
            self._writers.discard(client)
            self._relays.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until either side closes; then close the other direction too."""
    with contextlib.suppress(ConnectionError, OSError):
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
    writer.transport.abort()
