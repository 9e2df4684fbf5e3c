"""The Home tab: published when a user opens it, and again after
they act on an alert there. Only alerts of channels the user is a member of are listed or
changed; memberships are cached a minute per user, so opening the tab repeatedly stays within
Slack's rate limits. Events no listener wants are still answered 200 (Slack retries a 404).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack.blocks import home
from bot.slack.listeners.services import Handling, Services, handling, unexpected
from bot.usecases.home import home_alerts

log = logging.getLogger(__name__)

MEMBERSHIP_TTL_S = 60.0
_MAX_PERMALINKS = 10_000


class HomeTab:
    """Publishes users' Home tabs."""

    def __init__(self, services: Services, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._services = services
        self._clock = clock
        self._memberships: dict[str, tuple[float, set[str]]] = {}
        """User → (when read, the channels they are in)."""
        self._permalinks: dict[tuple[str, str], str] = {}

    async def channels_of(self, user: str, *, fresh: bool = False) -> set[str]:
        """The channels `user` is in: read from Slack at most once a minute per user to list
        alerts; `fresh` (before an alert is changed) reads them now."""
        now = self._clock()
        known = self._memberships.get(user)
        if not fresh and known is not None and now - known[0] < MEMBERSHIP_TTL_S:
            return known[1]
        channels = await self._services.sender.user_channels(user)
        self._memberships[user] = (now, channels)
        return channels

    async def publish(
        self, user: str, shown: str | None = None, *, notice: str | None = None
    ) -> None:
        """Publish the user's Home tab as it is now, headed by `notice` when given; `shown`
        is the `hash` of the view the user saw (a newer publish then wins)."""
        channels = await self.channels_of(user)
        alerts = await home_alerts(self._services.store, user, channels)
        permalinks: dict[tuple[str, str], str | None] = {}
        for thread in (*alerts.owned, *alerts.open):
            key = (thread.channel_id, thread.parent_ts)
            link = self._permalinks.get(key)
            if link is None:
                link = await self._services.sender.permalink(*key)
                if link is not None:  # a failure is asked again next time
                    if len(self._permalinks) >= _MAX_PERMALINKS:
                        self._permalinks.clear()
                    self._permalinks[key] = link
            permalinks[key] = link
        view = home.home_view(alerts, permalinks, notice=notice, web_url=self._services.web_url)
        if not await self._services.sender.publish_home(user, view, shown):
            log.info("the Home tab of %s changed meanwhile; the newer one stays", user)


def view_hash(payload: dict[str, Any]) -> str | None:
    """The `hash` of the view a payload came with (an event's or an action's), if any."""
    view = payload.get("view")
    value = view.get("hash") if isinstance(view, dict) else None
    return value if isinstance(value, str) else None


def register(app: AsyncApp, services: Services, tab: HomeTab) -> None:
    def counted(handled: Handling) -> None:
        services.metrics.interactions.labels(action="home", outcome=handled.outcome).inc()

    @app.event("app_home_opened")
    async def answered_at_once(event: dict[str, Any], body: dict[str, Any]) -> None:
        """Bolt acknowledges the event; the tab is built after (Slack's 3 s)."""
        user = event.get("user")
        if event.get("tab") != "home" or not isinstance(user, str) or not user:
            return  # the Messages tab, or a payload without a user: nothing to publish
        services.after_ack.start(on_home_opened(user, event, body))

    async def on_home_opened(user: str, event: dict[str, Any], body: dict[str, Any]) -> None:
        try:
            with handling(log, "interaction handled", counted, action="home", user=user):
                await tab.publish(user, view_hash(event))
        except Exception as error:  # the edge of the work after the ack: nobody to tell
            await unexpected(services, error, body, None)

    @app.event(re.compile(".*"))
    async def on_any_other_event() -> None:
        """Answered 200 and ignored: an unhandled event answers 404, which Slack retries."""
