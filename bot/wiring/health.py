"""How the process's dependencies are doing, for `/readyz` and each `/metrics` scrape (the
gauge `algo_errors_dependency_up`): checked when asked, and each change
logged once (a WARNING when a part goes down, an INFO when it is back), never a traceback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.metrics import Metrics
from bot.slack.server import Readiness
from bot.store.exceptions import StoreUnavailable
from bot.store.repository import Store

log = logging.getLogger(__name__)


class DatabaseWatch:
    """Pings the store's database; a database recreated empty gets its tables again."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._down: str | None = None

    async def up(self) -> bool:
        try:
            await self.store.database.ping()
        except StoreUnavailable as error:
            if self._down is None:
                log.warning("the database is unavailable: %s", error)
            self._down = str(error)
            return False
        if self._down is not None:
            log.info("the database answers again")
            self._down = None
        return True


def readiness(
    database: DatabaseWatch,
    socket: Callable[[], Awaitable[bool]] | None = None,
    *,
    slack: Callable[[], bool] | None = None,
    metrics: Metrics | None = None,
) -> Callable[[], Awaitable[Readiness]]:
    """`/readyz`: Slack not signed in yet (`slack`) or a socket that is not connected blocks
    Slack traffic; a database that does not answer only degrades the bot (queries need none).
    Each part's state is also the gauge `algo_errors_dependency_up{part}`."""

    async def check() -> Readiness:
        parts = {"database": await database.up()}
        if slack is not None:
            parts["slack"] = slack()
        if socket is not None:
            parts["socket"] = await socket()
        if metrics is not None:
            for part, up in parts.items():
                metrics.dependency_up.labels(part=part).set(1 if up else 0)
        blocking = tuple(p for p in ("slack", "socket") if parts.get(p) is False)
        degraded = () if parts["database"] else ("database",)
        return Readiness(blocking, degraded)

    return check


GAUGES_TIMEOUT_S = 1.0


def gauges(store: Store, metrics: Metrics) -> Callable[[], Awaitable[None]]:
    """Before each scrape, the gauges read from the database (the same in every replica); while
    it does not answer they keep their last values (`algo_errors_dependency_up` tells why)."""

    async def read() -> None:
        if not store.database.migrated:  # opening it is the start-up's job, not a scrape's
            return
        try:
            async with asyncio.timeout(GAUGES_TIMEOUT_S):  # a scrape never waits long on it
                subscriptions = await store.count_subscriptions()
                open_alerts = await store.count_open_alerts()
        except (StoreUnavailable, TimeoutError):
            return
        metrics.subscriptions.set(subscriptions)
        metrics.open_alerts.set(open_alerts)

    return read
