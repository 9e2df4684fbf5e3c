"""The digest scheduler: APScheduler runs a tick at an interval, never two at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)

ABANDON_WAIT_S = 2.0
"""How long a run cut short at the end of the grace gets to record what it finished."""


class DigestTicker:
    """`tick` every `every_s` seconds, coalesced, never two at once (a tick while one runs is
    skipped), the first one now.

    Stopping takes no new tick (`stop_soon()`) and gives a run in progress a grace to end;
    one still going then is cut short. That is safe: each post is recorded before it is sent
    and settled once Slack confirmed it, so a later run (of any worker, once the leases ran
    out) adopts what Slack holds and posts the rest, as after a crash."""

    def __init__(self, tick: Callable[[], Awaitable[object]], every_s: int) -> None:
        self._tick = tick
        self._running = asyncio.Lock()
        self._stopping_since: float | None = None
        self._cutoff: asyncio.Timeout | None = None
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_job(
            self._guarded,
            IntervalTrigger(seconds=every_s),
            coalesce=True,
            # A tick while a run goes returns at once (`_guarded`): with one instance at most,
            # APScheduler would log each such tick as a WARNING ("maximum number of running
            # instances reached"), though a run longer than the interval is no fault.
            max_instances=2,
            misfire_grace_time=every_s,
            next_run_time=datetime.now(UTC),
        )
        self._scheduler.start()

    async def _guarded(self) -> None:
        if self._running.locked():
            log.debug("digest tick skipped: the previous run is still going")
            return
        async with self._running:
            if self._stopping_since is not None:
                return
            log.debug("digest tick")
            cutoff = asyncio.timeout(None)
            try:
                async with cutoff:
                    self._cutoff = cutoff
                    await self._tick()
            except TimeoutError:
                if not cutoff.expired():
                    log.exception("digest tick failed")
                    return
                log.warning(
                    "the digest run was still going at shutdown: cut short; a later run "
                    "settles what it left open once its leases run out"
                )
            except Exception:  # the edge of a scheduled job: log it, the next tick runs anyway
                log.exception("digest tick failed")
            finally:
                self._cutoff = None

    def stop_soon(self) -> None:
        """Take no new tick from now on (a run in progress goes on until `stop`)."""
        if self._stopping_since is None:
            self._stopping_since = asyncio.get_running_loop().time()
            self._scheduler.pause()

    async def stop(self, grace_s: float) -> None:
        """Stop ticking; a run in progress gets until `grace_s` after `stop_soon()` (or now)
        to end, then it is cut short. APScheduler's own shutdown would cancel it at once."""
        self.stop_soon()
        assert self._stopping_since is not None
        deadline = self._stopping_since + grace_s
        if self._cutoff is not None:
            self._cutoff.reschedule(deadline)
        try:
            async with asyncio.timeout_at(deadline + ABANDON_WAIT_S), self._running:
                pass
        except TimeoutError:
            log.warning("the digest run did not end when cut short; its leases will run out")
        self._scheduler.shutdown(wait=False)
