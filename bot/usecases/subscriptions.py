"""Subscribe, unsubscribe, list: a channel's standing orders for digests.

Subscribing looks the algorithm up first (nothing is stored for an unknown algorithm or one
the bot may not read) and marks its current errors as seen, so the first digest holds only
new ones. Subscribing again changes only what the command names (schedule, time zone,
threshold, notify list) and keeps the rest and what was seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.algorithmia.exceptions import AlgorithmiaError
from bot.domain.alerts import Subscription
from bot.domain.algorithm_ref import AlgorithmId, AlgorithmRef, OwnerName, parse_algorithm_ref
from bot.domain.commands import DEFAULT_SCHEDULE, Subscribe
from bot.domain.schedule import next_run, parse_schedule, schedule_text
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
        *,
        notify: Sequence[str] = (),
        min_count: int = 1,
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
    """The channel was already subscribed: only what the command named changed."""
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
    channel = await store.channel_subscriptions(channel_id)
    existing = next((s for s in channel if s.algorithm == algorithm), None)
    again = existing is not None
    if existing is None:
        same = await subscribed_as(source, command.target, channel)
        if same is not None:
            raise SubscribedAs(same)
        schedule = command.schedule or DEFAULT_SCHEDULE
        timezone = command.timezone or user_timezone or DEFAULT_TIMEZONE
        next_run_at = next_run(schedule, timezone, now)
        notify, min_count = command.notify or (), command.min_count or 1
    else:
        schedule = command.schedule or parse_schedule(existing.schedule)
        timezone = command.timezone or existing.timezone
        timed = command.schedule is not None or command.timezone is not None
        next_run_at = next_run(schedule, timezone, now) if timed else existing.next_run_at
        notify = existing.notify if command.notify is None else command.notify
        min_count = command.min_count or existing.min_count
    subscription = await store.upsert_subscription(
        channel_id, algorithm, schedule_text(schedule), timezone, user_id, next_run_at, now,
        notify=notify, min_count=min_count,
    )  # fmt: skip
    seen = 0
    if not again:
        records = [(r.request_id, r.created_at) for r in batch.records]
        await store.mark_reported(subscription.id, records, now)
        seen = len(records)
    return Subscribed(subscription, again, seen)


class SubscribedAs(Exception):
    """The channel already gets the digests of this algorithm under its other name."""

    def __init__(self, existing: Subscription) -> None:
        super().__init__(existing.algorithm)
        self.existing = existing


SAME_ALGORITHM_DEADLINE_S = 10.0
"""Finding whether two names are one algorithm waits no longer: then they are taken as two."""


async def subscribed_as(
    source: ErrorSource, target: AlgorithmRef, subscriptions: Iterable[Subscription]
) -> Subscription | None:
    """The one of a channel's `subscriptions` to the algorithm `target` names, under its other
    name (`owner/name` for an `id:UUID`, or the other way round): two subscriptions to one
    algorithm would post each alert twice in the channel. None when there is none, or when
    the cluster does not tell the algorithm's id (the names are then taken as two)."""
    others = [s for s in subscriptions if s.algorithm != str(target)]
    by_id = [s for s in others if s.algorithm[:3].lower() == "id:"]
    if isinstance(target, AlgorithmId):  # the same id in another case is the same algorithm
        uuid = target.uuid.lower()
        same = next((s for s in by_id if s.algorithm[3:].lower() == uuid), None)
        if same is not None:
            return same
    try:
        async with asyncio.timeout(SAME_ALGORITHM_DEADLINE_S):
            if isinstance(target, OwnerName):
                wanted = await _id_of(source, target) if by_id else None
                return next((s for s in by_id if s.algorithm[3:].lower() == wanted), None)
            named = [s for s in others if s not in by_id]
            found = await asyncio.gather(
                *(_id_of(source, parse_algorithm_ref(s.algorithm)) for s in named)
            )
    except TimeoutError:
        return None
    uuid = target.uuid.lower()
    return next((s for s, named_id in zip(named, found, strict=True) if named_id == uuid), None)


async def _id_of(source: ErrorSource, ref: AlgorithmRef) -> str | None:
    if not isinstance(ref, OwnerName):
        return None
    try:
        info = await source.get_algorithm(ref)
    except AlgorithmiaError:
        return None
    return info.id.lower() if info.id else None


async def unsubscribe(store: SubscriptionStore, target: AlgorithmRef, channel_id: str) -> bool:
    """True if the channel was subscribed; its alert threads are kept for a later return."""
    return await store.remove_subscription(channel_id, str(target))


async def end_subscription(
    store: SubscriptionStore, source: ErrorSource, target: AlgorithmRef, channel_id: str
) -> str | None:
    """End the channel's subscription to the algorithm `target` names, made under this name or
    its other one (`subscribed_as`): the name it was made under, or None when there is none."""
    if await unsubscribe(store, target, channel_id):
        return str(target)
    same = await subscribed_as(source, target, await list_subscriptions(store, channel_id))
    if same is not None and await store.remove_subscription(channel_id, same.algorithm):
        return same.algorithm
    return None


async def list_subscriptions(store: SubscriptionStore, channel_id: str) -> list[Subscription]:
    return await store.channel_subscriptions(channel_id)
