"""The digest scheduler: APScheduler runs a tick at an interval, never two at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)


class DigestTicker:
    """`tick` every `every_s` seconds, coalesced, never two at once, the first one now;
    `stop()` lets a run in progress finish (its posts are counted only once Slack confirmed
    them, so cutting it short would post them again next time)."""

    def __init__(self, tick: Callable[[], Awaitable[object]], every_s: int) -> None:
        self._tick = tick
        self._running = asyncio.Lock()
        self._stopping = False
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_job(
            self._guarded,
            IntervalTrigger(seconds=every_s),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=every_s,
            next_run_time=datetime.now(UTC),
        )
        self._scheduler.start()

    async def _guarded(self) -> None:
        async with self._running:
            if self._stopping:
                return
            log.debug("digest tick")
            try:
                await self._tick()
            except Exception:  # the edge of a scheduled job: log it, the next tick runs anyway
                log.exception("digest tick failed")

    async def stop(self, grace_s: float = 120) -> None:
        # APScheduler's shutdown cancels a running job: let the run finish first.
        self._stopping = True
        self._scheduler.pause()
        try:
            async with asyncio.timeout(grace_s), self._running:
                pass
        except TimeoutError:
            log.warning("a digest run was still going after %s s; its leases will expire", grace_s)
        self._scheduler.shutdown(wait=False)
