"""Subscribe, unsubscribe, list: a channel's standing orders for digests (INTERFACE §3.2).

Subscribing looks the algorithm up first (nothing is stored for an unknown algorithm or one
the bot may not read) and marks its current errors as seen, so the first digest holds only
new ones. Subscribing again changes the schedule and keeps what was seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.domain.alerts import Subscription
from bot.domain.algorithm_ref import AlgorithmRef
from bot.domain.commands import Subscribe
from bot.domain.schedule import next_run, schedule_text
from bot.usecases.query import ErrorSource, fetch_errors

DEFAULT_TIMEZONE = "UTC"


class SubscriptionStore(Protocol):
    async def upsert_subscription(
        self,
        channel_id: str,
        algorithm: str,
        schedule: str,
        timezone: str,
        created_by: str,
        next_run_at: datetime,
        now: datetime,
    ) -> Subscription: ...

    async def remove_subscription(self, channel_id: str, algorithm: str) -> bool: ...

    async def channel_subscriptions(self, channel_id: str) -> list[Subscription]: ...

    async def mark_reported(
        self, subscription_id: int, records: Iterable[tuple[str, int]], now: datetime
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class Subscribed:
    subscription: Subscription
    again: bool
    """The channel was already subscribed: only the schedule changed."""
    seen: int
    """Current errors marked as seen (none when subscribing again)."""


async def subscribe(
    store: SubscriptionStore,
    source: ErrorSource,
    command: Subscribe,
    *,
    channel_id: str,
    user_id: str,
    user_timezone: str | None,
    now: datetime,
) -> Subscribed:
    """Store the subscription; raises `LookupFailure` (and stores nothing) when the
    algorithm's errors cannot be read."""
    batch = await fetch_errors(source, command.target)
    algorithm = str(command.target)
    again = any(s.algorithm == algorithm for s in await store.channel_subscriptions(channel_id))
    timezone = command.timezone or user_timezone or DEFAULT_TIMEZONE
    subscription = await store.upsert_subscription(
        channel_id,
        algorithm,
        schedule_text(command.schedule),
        timezone,
        user_id,
        next_run(command.schedule, timezone, now),
        now,
    )
    seen = 0
    if not again:
        records = [(r.request_id, r.created_at) for r in batch.records]
        await store.mark_reported(subscription.id, records, now)
        seen = len(records)
    return Subscribed(subscription, again, seen)


async def unsubscribe(store: SubscriptionStore, target: AlgorithmRef, channel_id: str) -> bool:
    """True if the channel was subscribed; its alert threads are kept for a later return."""
    return await store.remove_subscription(channel_id, str(target))


async def list_subscriptions(store: SubscriptionStore, channel_id: str) -> list[Subscription]:
    return await store.channel_subscriptions(channel_id)
