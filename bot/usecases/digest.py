"""A digest run (INTERFACE §3.2): each due subscription claimed, each algorithm fetched once,
each new kind of error alerted once, and a record counted as reported only after Slack
confirmed its post. One failing algorithm or channel never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.algorithm_ref import parse_algorithm_ref
from bot.digest.plan import DigestAction, Kind, plan_digest
from bot.digest.schedule import Daily, Every, Schedule, next_run
from bot.errors.grouping import ErrorGroup, group_occurrences, read_occurrences
from bot.errors.records import RecordBatch
from bot.store.models import (
    ALERT_COUNTERS,
    ALERT_STATE,
    AlertState,
    AlertThread,
    DigestRun,
    FinishedRun,
    Subscription,
)
from bot.usecases.query import ErrorSource, fetch_errors
from bot.usecases.results import FailureKind, LookupFailure

log = logging.getLogger(__name__)

OUTAGE_NOTICE_AFTER = 3
"""Failed runs in a row before the channel hears that the cluster is unreachable."""
RETRY_BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15))
"""When a run could not reach the cluster: retried at the next ticks, backing off."""
REPORTED_KEPT = timedelta(days=8)
"""The API's 7-day window plus a day: older reported ids can never come back."""
RUNS_KEPT = timedelta(days=30)
"""How long a digest run's record is kept (diagnosis), so storage stays bounded."""


class AlertGone(Exception):
    """The alert message of a thread is gone from Slack (deleted): its news need a new one."""


class LeaseLost(Exception):
    """Another worker took this subscription over (the lease expired) or it was removed."""


class ChannelGone(Exception):
    """Slack will not take posts in this channel (`not_in_channel`, `channel_not_found`,
    `is_archived`): the subscription is paused with `reason`, not retried forever."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AlertNotifier(Protocol):
    """What a digest says in a channel; the Slack adapter builds and paces the messages.
    Every method returns once Slack confirmed, and raises `ChannelGone` when it never will."""

    async def new_alert(self, channel_id: str, thread: AlertThread) -> str:
        """Post the alert message; returns its `ts` (stored at once: never two alerts)."""
        ...

    async def first_reply(self, channel_id: str, parent_ts: str, group: ErrorGroup) -> None:
        """The new alert's first thread reply: the group's details and trace."""
        ...

    async def thread_news(self, action: DigestAction) -> None:
        """Reply in the alert's thread (broadcast for a regression) unless muted, and update
        the alert message itself."""
        ...

    async def mute_over(self, thread: AlertThread) -> None:
        """Edit the alert to say its mute ran out (an edit notifies nobody)."""
        ...

    async def outage(self, subscription: Subscription, detail: str) -> None: ...

    async def recovered(self, subscription: Subscription) -> None: ...


class DigestStore(Protocol):
    async def claim_due(
        self, worker: str, now: datetime, lease_seconds: float, *, everything: bool = False
    ) -> list[Subscription]: ...

    async def finish_runs(self, worker: str, runs: Sequence[FinishedRun]) -> None: ...

    async def pause(self, subscription_id: int, reason: str) -> bool: ...

    async def set_outage_notified(self, subscription_id: int, value: bool) -> bool: ...

    async def reported_by_subscription(
        self, subscription_ids: Collection[int]
    ) -> dict[int, set[str]]: ...

    async def mark_reported(
        self, subscription_id: int, records: Iterable[tuple[str, int]], now: datetime
    ) -> None: ...

    async def prune_reported(self, before_ms: int) -> int: ...

    async def prune_digest_runs(self, before: datetime) -> int: ...

    async def get_alert_thread(
        self, channel_id: str, algorithm: str, fingerprint: str
    ) -> AlertThread | None: ...

    async def create_alert_thread(self, thread: AlertThread) -> bool: ...

    async def expired_mutes(self, now: datetime) -> list[AlertThread]: ...

    async def update_alert_thread(
        self, thread: AlertThread, *, fields: Collection[str] | None = None
    ) -> bool: ...

    async def renew_lease(self, subscription_id: int, worker: str, until: datetime) -> bool: ...


@dataclass
class DigestReport:
    """What one run did, for `digest --once` (exit 1 when anything failed) and logs."""

    ran: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    """Subscription id → why (cluster unreachable, channel gone, an unexpected error)."""
    posted: int = 0


def parse_schedule(text: str) -> Schedule:
    """The store's schedule text back into a schedule (the inverse of `schedule_text`)."""
    kind, _, value = text.partition(":")
    if kind == "every":
        units = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
        return Every(int(value[:-1]) * units[value[-1]])
    hour, _, minute = value.partition(":")
    return Daily(int(hour), int(minute), weekdays_only=kind == "weekdays")


def retry_at(failures: int, now: datetime) -> datetime:
    """When a run that could not reach the cluster is tried again (`failures` so far)."""
    return now + RETRY_BACKOFF[min(failures, len(RETRY_BACKOFF) - 1)]


async def run_digests(
    store: DigestStore,
    source: ErrorSource,
    notifier: AlertNotifier,
    *,
    now: datetime,
    worker: str,
    everything: bool = False,
    concurrency: int = 8,
    lease_seconds: float = 900,
) -> DigestReport:
    """Run every due subscription once (`everything`: all of them, due or not).

    Each algorithm is fetched once, at most `concurrency` at a time, and its subscriptions run
    as soon as its records arrive; one channel's subscriptions run one after the other, so its
    posts never interleave.
    """
    claimed = await store.claim_due(worker, now, lease_seconds, everything=everything)
    report = DigestReport()
    finished: list[FinishedRun] = []
    try:
        reported = await store.reported_by_subscription([s.id for s in claimed])
        mutes_over: dict[tuple[str, str], list[AlertThread]] = defaultdict(list)
        for thread in await store.expired_mutes(now):
            mutes_over[thread.channel_id, thread.algorithm].append(thread)
    except Exception:
        await store.finish_runs(worker, [])  # nothing ran; the leases expire
        raise
    lease = _Lease(store, worker, timedelta(seconds=lease_seconds))
    by_algorithm: dict[str, list[Subscription]] = defaultdict(list)
    for subscription in claimed:
        by_algorithm[subscription.algorithm].append(subscription)
    limit = asyncio.Semaphore(concurrency)
    channel_turns: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def digest_algorithm(algorithm: str, subscriptions: list[Subscription]) -> None:
        async with limit:
            try:
                batch: RecordBatch | LookupFailure = await fetch_errors(
                    source, parse_algorithm_ref(algorithm)
                )
            except LookupFailure as failure:
                batch = failure
            except Exception as error:  # a bug or a stored name that no longer parses
                log.exception("fetching %s failed", algorithm)
                batch = LookupFailure(FailureKind.BAD_RESPONSE, algorithm, str(error))
        ids = set() if isinstance(batch, LookupFailure) else {r.request_id for r in batch.records}
        for subscription in subscriptions:
            async with channel_turns[subscription.channel_id]:
                run = await _run_one(
                    store, notifier, subscription, batch, ids - reported[subscription.id],
                    now=now, report=report, lease=lease,
                    mutes_over=mutes_over[subscription.channel_id, subscription.algorithm],
                )  # fmt: skip
                finished.append(run)

    try:
        await asyncio.gather(*(digest_algorithm(a, subs) for a, subs in by_algorithm.items()))
    finally:  # one transaction for all: leases end, next runs set, runs recorded
        await store.finish_runs(worker, finished)
    await store.prune_reported(int((now - REPORTED_KEPT).timestamp() * 1000))
    await store.prune_digest_runs(now - RUNS_KEPT)
    return report


async def _run_one(
    store: DigestStore,
    notifier: AlertNotifier,
    subscription: Subscription,
    batch: RecordBatch | LookupFailure,
    fresh: set[str],
    *,
    now: datetime,
    report: DigestReport,
    lease: _Lease,
    mutes_over: Sequence[AlertThread] = (),
) -> FinishedRun:
    """One subscription's run (`fresh`: the request ids it has not reported); whatever
    happens, it ends in a `FinishedRun` that releases its lease."""
    outcome, detail, posted, succeeded = "ok", None, 0, True
    next_run_at = retry_at(subscription.consecutive_failures, now)
    try:
        next_run_at = next_run(parse_schedule(subscription.schedule), subscription.timezone, now)
        if isinstance(batch, LookupFailure):
            succeeded, outcome, detail = False, "cluster_failed", str(batch)
            next_run_at = min(next_run_at, retry_at(subscription.consecutive_failures, now))
            if (
                subscription.consecutive_failures + 1 >= OUTAGE_NOTICE_AFTER
                and not subscription.outage_notified
            ):
                await notifier.outage(subscription, batch.detail or batch.kind.value)
                await store.set_outage_notified(subscription.id, True)
        else:
            if subscription.outage_notified:
                await notifier.recovered(subscription)
                await store.set_outage_notified(subscription.id, False)
            await _end_mutes(store, notifier, subscription, mutes_over, lease)
            posted = await _report_new(store, notifier, subscription, batch, fresh, now, lease)
    except LeaseLost:
        outcome, detail = "lease_lost", "another worker took over, or it was unsubscribed"
    except ChannelGone as gone:
        succeeded, outcome, detail = False, "paused", gone.reason
        await store.pause(subscription.id, gone.reason)
    except Exception as error:  # the edge of one subscription's run: the others go on
        log.exception("digest of %s in %s failed", subscription.algorithm, subscription.channel_id)
        succeeded, outcome, detail = False, "error", f"{type(error).__name__}: {error}"
    report.posted += posted
    if succeeded:
        report.ran.append(subscription.id)
    else:
        where = f"{subscription.algorithm} in {subscription.channel_id}"
        report.failed[subscription.id] = f"{where}: {detail}"
    run = DigestRun(subscription.id, now, datetime.now(UTC), outcome, posted, detail)
    # Consecutive failures count cluster outages only: a Slack refusal is not one.
    return FinishedRun(run, next_run_at, succeeded=not isinstance(batch, LookupFailure))


class _Lease:
    """Keeps a subscription's lease alive while its run posts (pacing and rate limits can make
    a run outlast the first lease); says when it was lost."""

    def __init__(self, store: DigestStore, worker: str, length: timedelta) -> None:
        self._store, self._worker, self._length = store, worker, length

    async def renew(self, subscription_id: int) -> None:
        until = datetime.now(UTC) + self._length
        if not await self._store.renew_lease(subscription_id, self._worker, until):
            raise LeaseLost


async def _end_mutes(
    store: DigestStore,
    notifier: AlertNotifier,
    subscription: Subscription,
    mutes_over: Sequence[AlertThread],
    lease: _Lease,
) -> None:
    """A mute ends by itself: the alerts whose mute ran out are open again, and say so."""
    for thread in mutes_over:
        await lease.renew(subscription.id)
        opened = replace(
            thread, state=AlertState.OPEN, muted_until=None,
            state_changed_by=None, state_changed_at=thread.muted_until,
        )  # fmt: skip
        await notifier.mute_over(opened)
        await store.update_alert_thread(opened, fields=ALERT_STATE)


async def _report_new(
    store: DigestStore,
    notifier: AlertNotifier,
    subscription: Subscription,
    batch: RecordBatch,
    fresh: set[str],
    now: datetime,
    lease: _Lease,
) -> int:
    """Post what this subscription has not reported yet; returns the actions carried out.

    Before each action the lease is renewed (or the run stops) and the alert thread read
    again, so a click meanwhile is taken into account; a record counts as reported as soon
    as Slack confirmed the message that tells of it."""
    if not fresh:
        return 0
    groups = group_occurrences(read_occurrences(r for r in batch.records if r.request_id in fresh))
    channel, algorithm = subscription.channel_id, subscription.algorithm
    threads = {}
    for group in groups:
        thread = await store.get_alert_thread(channel, algorithm, group.fingerprint)
        if thread is not None:
            threads[group.fingerprint] = thread
    planned = plan_digest(channel, algorithm, groups, threads, now)
    for action in planned:
        await lease.renew(subscription.id)
        if action.kind is not Kind.NEW_ALERT:
            current = await store.get_alert_thread(channel, algorithm, action.group.fingerprint)
            if current is not None:
                known = {current.fingerprint: current}
                (action,) = plan_digest(channel, algorithm, [action.group], known, now)
        try:
            await _carry_out(store, notifier, subscription, action, now)
        except AlertGone:  # the alert message was deleted: the news get a new one
            await _new_alert(
                store,
                notifier,
                subscription,
                replace(action, kind=Kind.NEW_ALERT),
                now,
                exists=True,
            )
    return len(planned)


async def _carry_out(
    store: DigestStore,
    notifier: AlertNotifier,
    subscription: Subscription,
    action: DigestAction,
    now: datetime,
) -> None:
    if action.kind is Kind.NEW_ALERT:
        await _new_alert(store, notifier, subscription, action, now, exists=False)
        return
    await notifier.thread_news(action)
    await store.update_alert_thread(action.thread, fields=ALERT_COUNTERS)
    if action.kind is Kind.REGRESSION or action.mute_ended:
        await store.update_alert_thread(action.thread, fields=ALERT_STATE)
    await store.mark_reported(subscription.id, action.reported, now)


async def _new_alert(
    store: DigestStore,
    notifier: AlertNotifier,
    subscription: Subscription,
    action: DigestAction,
    now: datetime,
    *,
    exists: bool,
) -> None:
    """Post the alert, keep its `ts`, count its records reported, then its first reply (best
    effort: if that fails, the records must not come back as a second alert)."""
    parent_ts = await notifier.new_alert(subscription.channel_id, action.thread)
    thread = replace(action.thread, parent_ts=parent_ts)
    if exists:
        await store.update_alert_thread(thread, fields=("parent_ts", *ALERT_COUNTERS))
    else:
        await store.create_alert_thread(thread)
    await store.mark_reported(subscription.id, action.reported, now)
    try:
        await notifier.first_reply(subscription.channel_id, parent_ts, action.group)
    except ChannelGone:
        raise
    except Exception:
        log.exception(
            "the first reply of alert %s in %s failed", parent_ts, subscription.channel_id
        )
