"""An aiohttp application served on 127.0.0.1 at a free port: how the stand-ins run."""

from __future__ import annotations

import socket

from aiohttp import web


class LoopbackServer:
    """Serves one application between `start` and `stop`; `url` is its root."""

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    async def start(self, app: web.Application) -> None:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError(f"{self._owner} is not running: use `async with {self._owner}()`")
        return f"http://127.0.0.1:{self._port}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a process started next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
