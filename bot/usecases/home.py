"""A user's Home tab: the alerts they own, then the open alerts of
the channels they are a member of; never an alert of any other channel."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from bot.domain.alerts import AlertThread

HOME_LIMIT = 40
"""Alerts shown at most: two blocks each keeps a view within Slack's 100 blocks."""


class HomeStore(Protocol):
    async def home_alerts(
        self, user: str, channels: Collection[str], limit: int
    ) -> tuple[list[AlertThread], int]: ...


@dataclass(frozen=True, slots=True)
class HomeAlerts:
    owned: list[AlertThread]
    """Unresolved alerts the user owns (newest first)."""
    open: list[AlertThread]
    """Open alerts owned by someone else or nobody (newest first)."""
    more: int
    """Alerts of either kind beyond those shown."""

    @property
    def empty(self) -> bool:
        return not self.owned and not self.open


async def home_alerts(store: HomeStore, user: str, channels: Collection[str]) -> HomeAlerts:
    """What the Home tab lists for `user`, a member of `channels`."""
    threads, total = await store.home_alerts(user, channels, HOME_LIMIT)
    owned = [t for t in threads if t.owner == user]
    others = [t for t in threads if t.owner != user]
    return HomeAlerts(owned, others, max(0, total - len(threads)))
